// What a fuzzer checks beyond "no crash": a broken property aborts, which
// libFuzzer reports as a crash with the input that broke it.
#pragma once

#include <cstdlib>

namespace hubcache::fuzz {

inline void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace hubcache::fuzz
