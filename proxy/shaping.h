// Response shaping: what hubcache changes in the Hub's answers so that
// clients keep talking to hubcache, in plain HTTP (HUB_PROTOCOL.md §6.3,
// §1.6, §8.4).
//
//   - Xet hints: X-Xet-* headers and the `xet-auth` / `xet-reconstruction-info`
//     entries of `Link` are removed (other Link entries stay);
//   - `xetHash` members are removed from tree and paths-info JSON, leaving
//     every other byte of the document as it was;
//   - absolute URLs in `Link` (pagination) are moved from the Hub's origin to
//     hubcache's public URL, keeping path and every query parameter.
//
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "core/asio.h"

namespace hubcache::proxy {

// Removes X-Xet-* headers and Xet entries of Link from `fields`.
void StripXetHeaders(http::fields& fields);

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

// The headers of an upstream answer as hubcache relays them: hop-by-hop
// headers, framing (Content-Length, Transfer-Encoding), the upstream's
// X-Cache, cookies and HSTS dropped; Xet hints stripped; Link URLs on
// `from_base` moved to `to_base`; Location as RewriteLocation() says
// (dropped when it leads elsewhere).
http::fields ShapeRelayedHeaders(const http::fields& upstream, std::string_view from_base,
                                 std::string_view to_base);

// `json` without any `"xetHash": ...` member, all other bytes unchanged.
// Input that is not well-formed JSON is returned unchanged.
std::string StripXetHash(std::string_view json);

}  // namespace hubcache::proxy
