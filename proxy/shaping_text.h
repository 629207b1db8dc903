// The text half of response shaping (proxy/shaping.h): Link values, a
// relayed redirect's Location and the xetHash members of tree and
// paths-info JSON. No Asio here, so that it can be fuzzed
// (tests/fuzz/shaping_fuzz.cc).
//
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hubcache::proxy {

// `link` without its xet-auth and xet-reconstruction-info entries; nullopt
// when nothing is left.
std::optional<std::string> StripXetLinks(std::string_view link);

// The URL of the rel="next" entry of a Link value (pagination), or "".
std::string NextLinkUrl(std::string_view link);

// Rewrites each `<URL>` in a Link value whose URL starts with `from_base`
// (e.g. "https://huggingface.co") to start with `to_base` (e.g.
// "http://10.0.0.5:8080") instead. Everything after the base is kept. An
// empty `from_base` matches the origin of every http(s) URL (stored
// documents, which may come from another upstream through an import).
std::string RewriteLinkBase(std::string_view link, std::string_view from_base,
                            std::string_view to_base);

// Where a redirect relayed from the Hub (`from_base`, e.g.
// "https://huggingface.co") sends a client of hubcache (`to_base`, e.g.
// "http://10.0.0.5:8080/hf"): an absolute-path Location (`/org/new/...`)
// stays relative but gains the path of `to_base` when hubcache is reached
// under a path prefix (huggingface_hub replaces the whole URL path with it,
// HUB_PROTOCOL.md §8.1); a path-relative one (`x/y`) is kept as is; an
// absolute URL on `from_base` is moved onto `to_base`, keeping path and
// query. nullopt for any other target (a CDN, a bridge, another host,
// `//host/...`): clients are never sent there.
std::optional<std::string> RewriteLocation(std::string_view location, std::string_view from_base,
                                           std::string_view to_base);

// `json` without any `"xetHash": ...` member, all other bytes unchanged.
// Input that is not well-formed JSON is returned unchanged.
std::string StripXetHash(std::string_view json);

}  // namespace hubcache::proxy
