// Byte helpers shared by tests: deterministic content, reading a whole file
// descriptor, viewing a string as bytes.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>

namespace hubcache::testing {

// `size` pseudo-random bytes, the same for the same seed.
inline std::string Content(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// Everything readable from `fd`, from offset 0 (pread: the offset stays).
inline std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  off_t pos = 0;
  for (ssize_t n; (n = ::pread(fd, buf, sizeof(buf), pos)) > 0; pos += n) out.append(buf, n);
  return out;
}

// `s` (or `n` bytes of it from `offset`) as a byte span.
inline std::span<const std::uint8_t> AsBytes(std::string_view s, std::size_t offset = 0,
                                             std::size_t n = std::string_view::npos) {
  s = s.substr(offset, n);
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace hubcache::testing
