// The Hub routes: what hubcache answers for the requests Hub clients make
// (DESIGN.md "Request flow", HUB_PROTOCOL.md §8).
//
//   ServeFile         HEAD|GET /{[datasets/|spaces/]}{repo}/resolve/{rev}/{path}
//                     and /api/resolve-cache/{type}s/{repo}/{commit}/{path}:
//                     metadata from the cache or one Hub HEAD, bytes from the
//                     store (sendfile) or a coalesced download streamed as it
//                     arrives, pass-through when the store has no room.
//   ServeApi          /api/{type}s/{repo}/... and /api/whoami-v2: forwarded
//                     with the client's token; answers at a commit are cached;
//                     xetHash removed, Link rewritten to hubcache's own URL.
//                     A renamed repo's redirect is passed on (Location kept
//                     relative, or moved onto hubcache's URL), never followed.
//   ServePassthrough  any other GET/HEAD (and writes, when allowed): streamed
//                     through uncached, redirects followed here.
//
// Every answer carries X-Cache. HubContext holds references to daemon-owned
// objects that outlive every request.
//
// Executor: the connection's strand.
#pragma once

#include <string>

#include "core/asio.h"
#include "core/secret.h"
#include "proxy/access.h"
#include "proxy/exchange.h"
#include "proxy/fetch.h"
#include "proxy/file_resolver.h"
#include "proxy/hub_client.h"
#include "proxy/hub_path.h"
#include "proxy/metrics.h"
#include "proxy/options.h"
#include "store/blob_store.h"
#include "store/small_blob_cache.h"

namespace hubcache::proxy {

struct HubContext {
  HubClient& client;
  store::BlobStore& store;
  store::SmallBlobCache& small_blobs;
  FetchCoordinator& fetches;
  FileResolver& files;
  AccessPolicy& access;
  Metrics& metrics;
  net::any_io_executor blocking;
  std::string upstream_url;  // no trailing slash
  std::string public_url;    // server.public_url; empty: from the Host header
  ProxyOptions options;
};

net::awaitable<void> ServeFile(HubContext& hub, Exchange& exchange, FileRef ref);
net::awaitable<void> ServeApi(HubContext& hub, Exchange& exchange);
net::awaitable<void> ServePassthrough(HubContext& hub, Exchange& exchange);

// The token of `request` (`Authorization: Bearer <token>`), or empty.
Secret RequestToken(const Request& request);

// The base URL clients use for hubcache: server.public_url, or else
// `http://<Host>` of the request.
std::string PublicBase(const HubContext& hub, const Request& request);

// A JSON error `{"error": message}` with X-Error-Message (HEAD has no body)
// and X-Cache, plus `headers`.
net::awaitable<void> SendJsonError(Exchange& exchange, unsigned status, std::string_view message,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   CacheStatus cache);
net::awaitable<void> SendJsonError(Exchange& exchange, unsigned status, std::string_view message,
                                   CacheStatus cache);

// Passes on the Hub's redirect of a renamed repo (status 3xx, `location` as
// the Hub sent it) with the Location shaped by RewriteLocation(), `headers`
// and X-Cache: MISS. A Location that leads off the Hub is never passed on:
// the client gets a 502 instead.
net::awaitable<void> SendMoved(HubContext& hub, Exchange& exchange, unsigned status,
                               std::string_view location,
                               const std::vector<std::pair<std::string, std::string>>& headers);

}  // namespace hubcache::proxy
