#include "p2p/cold_fetch.h"

#include <nlohmann/json.hpp>

#include "core/errc.h"

namespace hubcache::p2p {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxPath = 4096;
// Larger than any blob the Hub stores (its single-file limit is 50 GB for
// LFS, 200 GB for Xet); a bound so that offsets never overflow.
constexpr std::uint64_t kMaxSize = std::uint64_t{1} << 50;

bool SafePath(std::string_view path) {
  if (path.empty() || path.size() > kMaxPath || path.front() != '/') return false;
  for (char c : path) {
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '\\') return false;
  }
  // Segments: none empty ("//", a trailing "/"), none "." or "..".
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    start = end + 1;
  }
  return true;
}

// A node's cluster address as the nodes exchange it: printable, no spaces,
// bounded.
bool SafeNode(std::string_view node) {
  if (node.empty() || node.size() > 300) return false;
  for (char c : node) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// An optional array of node addresses, at most kMaxExcluded.
bool ParseNodes(const Json& json, const char* key, std::vector<std::string>& out) {
  auto it = json.find(key);
  if (it == json.end()) return true;
  if (!it->is_array() || it->size() > kMaxExcluded) return false;
  for (const Json& node : *it) {
    if (!node.is_string() || !SafeNode(node.get_ref<const std::string&>())) return false;
    out.push_back(node.get<std::string>());
  }
  return true;
}

}  // namespace

std::string ColdFetchJson(const ColdFetch& fetch) {
  Json json{{"digest", fetch.digest.Hex()}, {"size", fetch.size}, {"path", fetch.resolve_path}};
  if (!fetch.exclude.empty()) json["exclude"] = fetch.exclude;
  if (!fetch.skip_leaders.empty()) json["skip_leaders"] = fetch.skip_leaders;
  if (!fetch.sealed_token.empty()) json["token"] = fetch.sealed_token;
  return json.dump();
}

std::string ColdSourceJson(const ColdSource& source) {
  return Json{{"state", source.stored ? "stored" : "fetching"}, {"source", source.node}}.dump();
}

Result<ColdSource> ParseColdSource(std::string_view body) {
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return Fail(core::Errc::kInvalidArgument);
  auto state = json.find("state");
  auto source = json.find("source");
  if (state == json.end() || !state->is_string() || source == json.end() || !source->is_string()) {
    return Fail(core::Errc::kInvalidArgument);
  }
  ColdSource out;
  out.stored = state->get<std::string>() == "stored";
  out.node = source->get<std::string>();
  if (!out.node.empty() && !SafeNode(out.node)) return Fail(core::Errc::kInvalidArgument);
  return out;
}

Result<ColdFetch> ParseColdFetch(std::string_view body) {
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return Fail(core::Errc::kInvalidArgument);
  auto digest_it = json.find("digest");
  auto size_it = json.find("size");
  auto path_it = json.find("path");
  if (digest_it == json.end() || !digest_it->is_string() || size_it == json.end() ||
      !size_it->is_number_unsigned() || path_it == json.end() || !path_it->is_string()) {
    return Fail(core::Errc::kInvalidArgument);
  }
  auto digest = store::Digest::ParseHex(digest_it->get<std::string>());
  if (!digest) return Fail(core::Errc::kInvalidArgument);
  const auto size = size_it->get<std::uint64_t>();
  if (size == 0 || size > kMaxSize) return Fail(core::Errc::kInvalidArgument);
  std::string path = path_it->get<std::string>();
  if (!SafePath(path)) return Fail(core::Errc::kInvalidArgument);
  ColdFetch out{.digest = *digest,
                .size = size,
                .resolve_path = std::move(path),
                .exclude = {},
                .skip_leaders = {},
                .sealed_token = {}};
  if (!ParseNodes(json, "exclude", out.exclude) ||
      !ParseNodes(json, "skip_leaders", out.skip_leaders)) {
    return Fail(core::Errc::kInvalidArgument);
  }
  if (auto token = json.find("token"); token != json.end()) {
    if (!token->is_string()) return Fail(core::Errc::kInvalidArgument);
    const std::string& hex = token->get_ref<const std::string&>();
    if (hex.empty() || hex.size() > kMaxSealedToken || hex.size() % 2 != 0 ||
        hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return Fail(core::Errc::kInvalidArgument);
    }
    out.sealed_token = hex;
  }
  return out;
}

}  // namespace hubcache::p2p
