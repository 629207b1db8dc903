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
// Pure functions, thread-safe. The text-only ones (Link values, Location,
// xetHash) are in proxy/shaping_text.h, included here.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "core/asio.h"
#include "proxy/shaping_text.h"

namespace hubcache::proxy {

// Removes X-Xet-* headers and Xet entries of Link from `fields`.
void StripXetHeaders(http::fields& fields);

// The headers of an upstream answer as hubcache relays them: hop-by-hop
// headers, framing (Content-Length, Transfer-Encoding), the upstream's
// X-Cache, cookies and HSTS dropped; Xet hints stripped; Link URLs on
// `from_base` moved to `to_base`; Location as RewriteLocation() says
// (dropped when it leads elsewhere).
http::fields ShapeRelayedHeaders(const http::fields& upstream, std::string_view from_base,
                                 std::string_view to_base);

}  // namespace hubcache::proxy
