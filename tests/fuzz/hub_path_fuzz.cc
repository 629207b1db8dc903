// libFuzzer target: the request targets a client sends (proxy/hub_path.h):
// /{repo}/resolve/{rev}/{path}, /api/resolve-cache/..., /api/{type}s/{repo}/...,
// with percent decoding. Checks that a parsed file path never escapes the
// repo (no empty, "." or ".." segment, no NUL), and that percent encoding
// round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/hub_path.h"
#include "tests/fuzz/require.h"

namespace hp = hubcache::proxy;

using hubcache::fuzz::Require;

namespace {
void CheckPath(const std::string& path) {
  Require(!path.empty());
  for (char c : path) Require(static_cast<unsigned char>(c) >= 0x20);
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view segment(path.data() + start, end - start);
    Require(!segment.empty() && segment != "." && segment != "..");
    start = end + 1;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ref = hp::ParseResolvePath(text)) {
    CheckPath(ref->path);
    Require(!ref->revision.empty());
  }
  if (auto ref = hp::ParseResolveCachePath(text)) {
    CheckPath(ref->path);
  }
  (void)hp::ParseApiPath(text);
  // Encoding any bytes and decoding them gives them back.
  for (bool keep_slash : {false, true}) {
    auto decoded = hp::PercentDecode(hp::PercentEncode(text, keep_slash));
    Require(decoded && *decoded == text);
  }
  (void)hp::PercentDecode(text);
  return 0;
}
