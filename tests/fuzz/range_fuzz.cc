// libFuzzer target: the Range header a client sends, and the Content-Range an
// upstream 206 carries (proxy/byte_ranges.h). Checks what the server relies
// on: every span it would send lies inside the body, in order of the header,
// at most kMaxRanges of them, and what it writes back parses again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "proxy/byte_ranges.h"
#include "tests/fuzz/require.h"

using hubcache::proxy::ContentRange;
using hubcache::proxy::kMaxRanges;
using hubcache::proxy::ParseContentRange;
using hubcache::proxy::ParseRange;
using hubcache::proxy::RangeRequest;

using hubcache::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first 8 bytes pick the body size (often small, sometimes huge).
  std::uint64_t total = 0;
  if (size >= 8) {
    std::memcpy(&total, data, 8);
    data += 8;
    size -= 8;
    if ((total & 1) == 0) total %= 4096;
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const RangeRequest range = ParseRange(text, total);
  if (range.kind == RangeRequest::Kind::kRanges) {
    Require(!range.spans.empty() && range.spans.size() <= kMaxRanges);
    for (const auto& span : range.spans) {
      Require(span.first <= span.last && span.last < total);
      // What the 206 says of the span reads back as the same span.
      auto again = ParseContentRange(ContentRange(span, total));
      Require(again && again->span == span && again->total == total);
    }
  } else {
    Require(range.spans.empty());
  }
  if (auto content = ParseContentRange(text)) {
    Require(content->span.first <= content->span.last);
  }
  return 0;
}
