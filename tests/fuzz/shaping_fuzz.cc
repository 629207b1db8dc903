// libFuzzer target: what hubcache rewrites in the Hub's answers
// (proxy/shaping_text.h): Link values, a relayed redirect's Location, and
// the xetHash members of tree and paths-info JSON. Checks that a client is
// never sent to another host, that Xet hints do not survive, and that the
// JSON keeps every member but xetHash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "proxy/shaping_text.h"
#include "tests/fuzz/require.h"

namespace proxy = hubcache::proxy;
using Json = nlohmann::json;

using hubcache::fuzz::Require;

namespace {
constexpr std::string_view kHub = "https://huggingface.co";
constexpr std::string_view kOurs = "http://10.0.0.5:8080/hf";

void DropXetHash(Json& json) {
  if (json.is_object()) {
    json.erase("xetHash");
    for (auto& [key, value] : json.items()) DropXetHash(value);
  } else if (json.is_array()) {
    for (Json& value : json) DropXetHash(value);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Link: stripping twice changes nothing more; no Xet rel is left.
  if (auto kept = proxy::StripXetLinks(text)) {
    auto again = proxy::StripXetLinks(*kept);
    Require(again && *again == *kept);
  }
  (void)proxy::NextLinkUrl(text);
  const std::string moved = proxy::RewriteLinkBase(text, kHub, kOurs);
  if (text.find('<') == std::string_view::npos) Require(moved == text);
  (void)proxy::RewriteLinkBase(text, "", kOurs);
  // Location: relative, or on hubcache; never another host.
  if (auto location = proxy::RewriteLocation(text, kHub, kOurs)) {
    Require(!location->starts_with("//"));
    const std::size_t colon = location->find(':');
    const std::size_t delimiter = location->find_first_of("/?#");
    const bool absolute = colon != std::string::npos && colon < delimiter;
    if (absolute) Require(location->starts_with(kOurs));
  }
  // JSON: the same document without xetHash members.
  const std::string stripped = proxy::StripXetHash(text);
  // nlohmann's parser ends its input at a NUL byte, which no client's JSON
  // parser does (Python's json and JS's JSON.parse refuse what follows):
  // such a text is no JSON to compare with.
  Json before = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!before.is_discarded() && text.find('\0') == std::string_view::npos) {
    Json after = Json::parse(stripped, nullptr, false);
    Require(!after.is_discarded());
    DropXetHash(before);
    Require(after == before);
  }
  return 0;
}
