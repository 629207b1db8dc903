// The Range request header as hubcache serves it (RFC 9110 §14, and
// HUB_PROTOCOL.md §8.2): `bytes=a-b`, `bytes=a-`, `bytes=-n` and lists of
// them. An end past the last byte is clamped (hf_transfer asks one byte too
// far); a list keeps the satisfiable members; nothing satisfiable, a
// malformed header, or too many ranges is a 416 with `bytes */<total>`.
// A ranged request is never answered with the whole file as a plain 200.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hubcache::proxy {

struct ByteSpan {
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive
  std::uint64_t length() const { return last - first + 1; }
  friend bool operator==(const ByteSpan&, const ByteSpan&) = default;
};

struct RangeRequest {
  enum class Kind {
    kWhole,          // no Range header: 200 with the whole body
    kRanges,         // 206 with `spans` (one: a plain 206; more: multipart/byteranges)
    kUnsatisfiable,  // 416 with Content-Range: bytes */<total>
  };
  Kind kind = Kind::kWhole;
  std::vector<ByteSpan> spans;
};

inline constexpr std::size_t kMaxRanges = 32;

// Interprets the Range header `value` (empty: none) for a body of `total`
// bytes.
RangeRequest ParseRange(std::string_view value, std::uint64_t total);

// "bytes a-b/total" for a 206, "bytes */total" for a 416.
std::string ContentRange(const ByteSpan& span, std::uint64_t total);
std::string UnsatisfiedContentRange(std::uint64_t total);

// An upstream 206's Content-Range, "bytes a-b/total" (total may be "*"):
// the span and the total if given; nullopt when malformed or when b < a.
struct ContentRangeValue {
  ByteSpan span;
  std::optional<std::uint64_t> total;
};
std::optional<ContentRangeValue> ParseContentRange(std::string_view value);

}  // namespace hubcache::proxy
