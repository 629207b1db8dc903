// Check(): the invariant guard for states that must never happen.
//
// Unlike assert(), Check() stays on in release builds: it logs the message and
// the call site, then aborts. Use it where continuing would corrupt the store
// or serve wrong bytes. Cheap debug-only checks stay as assert().
#pragma once

#include <string_view>

namespace hubcache {

// The caller's file and line. Not std::source_location: the fuzzers build
// with clang 14, whose libstdc++ 12 headers leave it out.
struct CallSite {
  const char* file;
  unsigned line;
  static constexpr CallSite Here(const char* file = __builtin_FILE(),
                                 unsigned line = __builtin_LINE()) {
    return CallSite{file, line};
  }
};

// Aborts the process with `message` and the caller's location when `condition`
// is false. Never returns in that case; thread-safe.
void Check(bool condition, std::string_view message, CallSite where = CallSite::Here());

}  // namespace hubcache
