// Small HTTP helpers of the fake Hub: percent-encoding the way the Hub's
// clients do it (HUB_PROTOCOL.md §1.3), query and form parsing, Range
// parsing with the Hub's exact semantics (§8.2), base64url, HTTP dates.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hubcache::fakehub {

// Decodes %XX escapes. `plus_is_space` applies the form convention ('+' is a
// space); paths never use it ('+' stays '+'). nullopt for a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space = false);

// Encodes everything but A-Za-z0-9 and "-._~"; `keep_slash` also keeps '/'
// (Python's quote(path) for file paths; without it, quote(x, safe="")).
std::string PercentEncode(std::string_view text, bool keep_slash);

// Splits "/a/b%2Fc/" into raw (still encoded) segments {"a", "b%2Fc", ""}.
std::vector<std::string_view> SplitPath(std::string_view path);

// Splits a target into path and query (without '?').
std::pair<std::string_view, std::string_view> SplitTarget(std::string_view target);

// Parses "a=1&b=2&a=3" (or a form body) into decoded pairs, in order;
// '+' is a space. Malformed escapes are kept literally.
using Params = std::vector<std::pair<std::string, std::string>>;
Params ParseQuery(std::string_view query);
// First value of `key`, or nullopt.
std::optional<std::string> Param(const Params& params, std::string_view key);
// "true"/"1"/"True" (any case) is true; absent gives `fallback`.
bool BoolParam(const Params& params, std::string_view key, bool fallback);

// The outcome of a Range header against a body of `size` bytes.
struct ByteRange {
  enum class Kind { kWhole, kPartial, kUnsatisfiable };
  Kind kind = Kind::kWhole;
  std::uint64_t first = 0;  // kPartial: inclusive bounds
  std::uint64_t last = 0;
};
// Accepts "bytes=a-b", "bytes=a-" and "bytes=-n" (one range): an end past
// the last byte is clamped; a start at or past `size` (or "-0") is
// unsatisfiable. Anything else (absent, malformed, several ranges) is
// ignored, as RFC 9110 allows: the whole body.
ByteRange ParseRange(std::string_view header, std::uint64_t size);

std::string Base64UrlEncode(std::string_view data);  // no padding
std::optional<std::string> Base64UrlDecode(std::string_view text);

// "Sun, 06 Nov 1994 08:49:37 GMT" for now.
std::string HttpDate();

std::string ToLower(std::string_view text);

}  // namespace hubcache::fakehub
