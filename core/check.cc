#include "core/check.h"

#include <cstdio>
#include <cstdlib>

#include "core/log.h"

namespace hubcache {

[[noreturn]] static void Fatal(std::string_view message,
                               const std::source_location& where) {
  log::Error(log::Module::kDaemon, "check_failed",
             {{"message", message},
              {"file", where.file_name()},
              {"line", static_cast<std::int64_t>(where.line())}});
  log::Flush();
  std::fprintf(stderr, "hubcache: check failed: %.*s at %s:%u\n",
               static_cast<int>(message.size()), message.data(),
               where.file_name(), static_cast<unsigned>(where.line()));
  std::abort();
}

void Check(bool condition, std::string_view message,
           std::source_location where) {
  if (!condition) Fatal(message, where);
}

}  // namespace hubcache
