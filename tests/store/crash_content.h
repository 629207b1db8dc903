// Deterministic blobs for the crash test: blob n has a size between 1 byte
// and 32 KiB and is an LFS (sha256) blob when n is odd, a git blob otherwise.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "store/digest.h"

namespace hubcache::testing {

inline std::uint64_t SplitMix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::string CrashContent(long n) {
  std::uint64_t state = static_cast<std::uint64_t>(n) * 7919 + 1;
  std::string out(1 + SplitMix(state) % 32768, '\0');
  for (std::size_t i = 0; i < out.size(); i += 8) {
    const std::uint64_t word = SplitMix(state);
    std::memcpy(out.data() + i, &word, std::min<std::size_t>(8, out.size() - i));
  }
  return out;
}

inline store::Digest CrashDigest(long n) {
  return store::HashBytes(n % 2 ? store::DigestKind::kSha256 : store::DigestKind::kGitSha1,
                          CrashContent(n));
}

}  // namespace hubcache::testing
