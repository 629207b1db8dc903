// The wall clock as hubcache records it: whole unix seconds (what the index
// stores for access times, ref and grant ages). One definition, so that a
// test can reason about every timestamp the same way; components whose
// behaviour depends on time (AccessPolicy) take a Clock they can be handed
// in tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace hubcache::core {

// Seconds since the unix epoch, now.
inline std::int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A source of unix seconds: UnixSeconds in production, a fixed or stepped
// value in tests.
using Clock = std::function<std::int64_t()>;

}  // namespace hubcache::core
