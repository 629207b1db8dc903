// Check(): the invariant guard for states that must never happen.
//
// Unlike assert(), Check() stays on in release builds: it logs the message and
// the call site, then aborts. Use it where continuing would corrupt the store
// or serve wrong bytes. Cheap debug-only checks stay as assert().
#pragma once

#include <source_location>
#include <string_view>

namespace hubcache {

// Aborts the process with `message` and the caller's location when `condition`
// is false. Never returns in that case; thread-safe.
void Check(bool condition, std::string_view message,
           std::source_location where = std::source_location::current());

}  // namespace hubcache
