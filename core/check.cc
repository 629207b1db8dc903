#include "core/check.h"

#include <cstdio>
#include <cstdlib>

#include "core/log.h"

namespace hubcache {

[[noreturn]] static void Fatal(std::string_view message, const CallSite& where) {
  log::Error(log::Module::kDaemon, "check_failed",
             {{"message", message},
              {"file", where.file},
              {"line", static_cast<std::int64_t>(where.line)}});
  log::Flush();
  std::fprintf(stderr, "hubcache: check failed: %.*s at %s:%u\n",
               static_cast<int>(message.size()), message.data(),
               where.file, static_cast<unsigned>(where.line));
  std::abort();
}

void Check(bool condition, std::string_view message, CallSite where) {
  if (!condition) Fatal(message, where);
}

}  // namespace hubcache
