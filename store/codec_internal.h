// Binary encoding of index keys and values, internal to store/.
//
// Integers are big-endian so that keys sort numerically in LMDB. Every value
// starts with a format byte so that a later version can read or migrate it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hubcache::store::internal {

inline void PutU8(std::string& out, std::uint8_t v) { out += static_cast<char>(v); }

inline void PutU32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

inline void PutU64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

// Length-prefixed bytes.
inline void PutBytes(std::string& out, std::string_view s) {
  PutU32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

// Reads what the Put* functions wrote; any read past the end fails the whole
// decode (ok() turns false) instead of reading garbage.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  std::uint8_t U8() { return static_cast<std::uint8_t>(Uint(1)); }
  std::uint32_t U32() { return static_cast<std::uint32_t>(Uint(4)); }
  std::uint64_t U64() { return Uint(8); }
  std::string_view Bytes() {
    const std::uint32_t n = U32();
    return Take(n).value_or(std::string_view());
  }
  std::string_view Rest() {
    std::string_view rest = data_;
    data_ = {};
    return rest;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && data_.empty(); }

 private:
  std::optional<std::string_view> Take(std::size_t n) {
    if (!ok_ || data_.size() < n) {
      ok_ = false;
      return std::nullopt;
    }
    std::string_view out = data_.substr(0, n);
    data_.remove_prefix(n);
    return out;
  }
  std::uint64_t Uint(std::size_t n) {
    auto bytes = Take(n);
    if (!bytes) return 0;
    std::uint64_t v = 0;
    for (unsigned char c : *bytes) v = (v << 8) | c;
    return v;
  }

  std::string_view data_;
  bool ok_ = true;
};

}  // namespace hubcache::store::internal
