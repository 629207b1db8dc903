#include "daemon/cluster_glue.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "core/errc.h"
#include "core/log.h"
#include "core/offload.h"
#include "p2p/errc.h"
#include "proxy/blob_sender.h"
#include "proxy/byte_ranges.h"
#include "proxy/errc.h"
#include "proxy/hub_path.h"

namespace hubcache::daemon {

namespace {

constexpr auto kModule = log::Module::kP2p;
constexpr std::string_view kFetchRoute = "/_cluster/v1/fetch";
constexpr std::string_view kBlobRoute = "/_cluster/v1/blob/";

// The path of `url` under `base` ("/org/m/resolve/main/f" of
// "https://hub/org/m/resolve/main/f"), or empty when it is not under it.
std::string PathUnder(std::string_view url, std::string_view base) {
  while (base.ends_with('/')) base.remove_suffix(1);
  if (!url.starts_with(base) || url.size() <= base.size() || url[base.size()] != '/') return {};
  return std::string(url.substr(base.size()));
}

// Not coroutines: the response moves into Send's frame (GCC 12 mishandles
// JSON initializer lists in coroutine frames).
net::awaitable<ErrorCode> SendJson(proxy::Exchange& exchange, unsigned status, std::string body) {
  proxy::StringResponse response(static_cast<http::status>(status), exchange.request().version());
  response.set(http::field::content_type, "application/json");
  response.set(http::field::cache_control, "no-store");
  response.body() = std::move(body);
  return exchange.Send(std::move(response));
}

net::awaitable<ErrorCode> SendJsonError(proxy::Exchange& exchange, unsigned status,
                                        std::string_view message) {
  return SendJson(exchange, status, nlohmann::json{{"error", message}}.dump());
}

// The Hub refused the leader's own request for a file: the asker may send
// its client's token, sealed for the file.
std::string NeedsTokenBody() {
  return nlohmann::json{{"error", "the Hub refused this node's request for the file"},
                        {"needs_token", true}}
      .dump();
}

}  // namespace

net::awaitable<Result<void>> PeerSource::Fill(const proxy::BlobRequest& request,
                                              proxy::BlobSink& sink) {
  if (!cluster_.has_others()) co_return Fail(proxy::Errc::kSourceUnavailable);
  // Writes go through the fetch's sink: the store's writer, its hash pass
  // and the readers following the download.
  const p2p::PieceWriter write = [&sink](std::uint64_t offset,
                                         std::span<const std::uint8_t> bytes) {
    return sink.WriteAt(offset, bytes);
  };
  // 1. From the nodes that hold it, over BitTorrent.
  sink.Via("swarm");
  auto fetched = co_await cluster_.Fetch(request.digest, request.size, write);
  if (fetched || fetched.error() != p2p::Errc::kNoHolders) co_return fetched;
  // 2. Nobody holds it: its leader fetches it from the Hub, once for the
  // whole cluster, and this node streams it from the leader meanwhile. The
  // leader is told where the file is on the Hub; the client's token only
  // when the Hub refused the leader's own request (a gated or private file),
  // sealed for this file, and the leader re-checks it with the Hub.
  std::string path = PathUnder(request.resolve_url, upstream_url_);
  if (path.empty()) co_return Fail(proxy::Errc::kSourceUnavailable);
  const std::uint64_t from = sink.WrittenFrom(0);
  sink.Via("leader");
  p2p::ColdFetch ask{.digest = request.digest,
                     .size = request.size,
                     .resolve_path = std::move(path),
                     .exclude = {},
                     .skip_leaders = {},
                     .sealed_token = {}};
  auto streamed = co_await cluster_.FetchFromLeader(std::move(ask), request.token, from, write);
  if (!streamed && sink.WrittenFrom(0) == from &&
      (streamed.error() == p2p::Errc::kNoHolders ||
       streamed.error() == p2p::Errc::kLeaderCannotFetch)) {
    co_return Fail(proxy::Errc::kSourceUnavailable);
  }
  co_return streamed;
}

net::awaitable<void> ClusterHandler::ColdFetch(proxy::Exchange& exchange,
                                               const p2p::ClusterRequest& request) {
  auto ask = p2p::ParseColdFetch(request.body);
  if (!ask) {
    co_await SendJsonError(exchange, 400,
                           "expected {\"digest\": hex, \"size\": bytes, \"path\": a resolve path}");
    co_return;
  }
  auto ref = proxy::ParseResolvePath(ask->resolve_path);
  if (!ref) {
    co_await SendJsonError(exchange, 400, "path is not a file resolve path of the Hub");
    co_return;
  }
  auto token = cluster_.AcceptColdFetch(*ask);
  if (!token) {
    co_await SendJsonError(exchange, 400, "the token is not sealed for this file with this cluster's key");
    co_return;
  }
  const store::Digest digest = ask->digest;
  const std::string hex = digest.Hex();
  // No download URL: this node resolves the file with its own upstream and
  // fetches only if the Hub names the same digest and size (with the
  // client's token, for a restricted file: the Hub re-checks it).
  proxy::BlobRequest blob{.digest = digest,
                          .size = ask->size,
                          .repo = ref->repo,
                          .download_url = {},
                          .resolve_url = upstream_url_ + ask->resolve_path,
                          .token = std::move(*token)};
  auto stored = [this, &digest] { return store_.Lookup(digest).has_value(); };
  const std::string stored_answer = p2p::ColdSourceJson({.stored = true, .node = ""});
  proxy::BlobRequest first = blob;  // named: no temporaries in co_await (GCC 12)
  auto joined = co_await fetches_.Join(std::move(first));
  if (!joined && joined.error() == core::Errc::kAlreadyExists && !stored()) {
    // Committed after this node's lookup, and evicted before the one just
    // made (a small cache under pressure): fetch it again.
    joined = co_await fetches_.Join(std::move(blob));
  }
  if (!joined) {
    if (stored()) {
      co_await SendJson(exchange, 200, stored_answer);
    } else {
      co_await SendJsonError(exchange, 503, "cannot fetch: " + joined.error().message());
    }
    co_return;
  }
  auto supplier = co_await joined->fetch->WaitForSupplier();
  if (!supplier) {
    if (stored()) {
      co_await SendJson(exchange, 200, stored_answer);
    } else {
      log::Info(kModule, "leader_fetch_failed",
                {{"digest", hex}, {"for", request.auth.node}, {"error", supplier.error().message()}});
      if (supplier.error() == proxy::Errc::kAccessRefused) {
        // The asker may send its client's token, sealed, and ask again.
        co_await SendJson(exchange, 403, NeedsTokenBody());
      } else {
        co_await SendJsonError(exchange, 502, "the Hub: " + supplier.error().message());
      }
    }
    co_return;
  }
  // Where the asker streams from: this node, or a node that streams it
  // already (a tree of cluster.stream_fanout).
  const std::string source = cluster_.StreamSource(digest, request.auth.node, ask->exclude);
  log::Info(kModule, "leader_fetch",
            {{"digest", hex}, {"for", request.auth.node}, {"started", joined->started},
             {"source", source.empty() ? cluster_.self() : source}});
  const std::string answer = p2p::ColdSourceJson({.stored = false, .node = source});
  co_await SendJson(exchange, 200, answer);
}

net::awaitable<void> ClusterHandler::StreamBlob(proxy::Exchange& exchange, std::string_view hex,
                                                std::uint64_t from, const std::string& node) {
  auto digest = store::Digest::ParseHex(hex);
  if (!digest) {
    co_await SendJsonError(exchange, 400, "expected a lower-case hex digest");
    co_return;
  }
  proxy::BlobBody body;
  if (auto fetch = fetches_.Find(*digest)) {
    // Still arriving: send each byte once it is on disk, and the last one
    // only once the whole blob is verified.
    if (co_await fetch->WaitOpened()) {
      if (auto reader = fetch->OpenReader()) {
        body = proxy::BlobBody{.fd = std::move(*reader), .size = fetch->size(),
                               .fetch = std::move(fetch)};
      }
    }
  }
  if (!body.fd) {
    auto blob = store_.Lookup(*digest);
    if (!blob) {
      co_await SendJsonError(exchange, 404, "this node neither holds nor fetches that blob");
      co_return;
    }
    body = proxy::BlobBody{.fd = std::move(blob->fd), .size = blob->size};
  }
  if (from >= body.size) {
    co_await SendJsonError(exchange, 416, "from is past the end of the blob");
    co_return;
  }
  const proxy::RangeRequest range =
      from == 0 ? proxy::RangeRequest{}
                : proxy::ParseRange("bytes=" + std::to_string(from) + "-", body.size);
  http::response_header<> head;
  head.set(http::field::content_type, "application/octet-stream");
  head.set(http::field::cache_control, "no-store");
  if (body.fetch == nullptr) {
    // A disk that fails to read the blob back: out of the store (refetched
    // when asked again), as when a client's read fails (proxy/file_routes.cc).
    // The asker takes its bytes from another source.
    body.unreadable = [this, unreadable = *digest](ErrorCode why) {
      return Quarantine(unreadable, why);
    };
  }
  const proxy::SentBlob sent =
      co_await proxy::SendBlob(exchange, std::move(head), range, std::move(body));
  cluster_.CountStreamed(node, 0, sent.body_bytes);
  if (!sent.answered) co_await SendJsonError(exchange, 503, "this node cannot read that blob");
}

net::awaitable<void> ClusterHandler::Quarantine(store::Digest digest, ErrorCode why) {
  log::Error(kModule, "blob_unreadable", {{"digest", digest.Hex()}, {"error", why.message()}});
  const std::string reason = why.message();
  auto taken = co_await core::Offload(
      blocking_, [this, &digest, &reason] { return store_.Quarantine(digest, reason); });
  if (!taken) {
    log::Warn(kModule, "quarantine_failed",
              {{"digest", digest.Hex()}, {"error", taken.error().message()}});
  }
}

net::awaitable<void> ClusterHandler::Handle(proxy::Exchange& exchange) {
  const proxy::Request& in = exchange.request();
  p2p::ClusterRequest request;
  request.method = std::string(in.method_string());
  request.target = std::string(in.target());
  request.body = in.body();
  auto header = [&in](std::string_view name) {
    auto it = in.find(beast::string_view(name.data(), name.size()));
    return it == in.end() ? std::string() : std::string(it->value());
  };
  request.auth.node = header(p2p::kNodeHeader);
  request.auth.time = header(p2p::kTimeHeader);
  request.auth.signature = header(p2p::kSignatureHeader);
  ErrorCode ec;
  const auto remote = exchange.stream().socket().remote_endpoint(ec);
  request.remote = ec ? std::string("?") : remote.address().to_string();

  // The routes that need the fetch coordinator are served here, with the
  // same signature check.
  const std::string_view target = request.target;
  const bool cold_fetch = target == kFetchRoute && in.method() == http::verb::post;
  const bool blob = target.starts_with(kBlobRoute) && in.method() == http::verb::get;
  if (cold_fetch || blob) {
    if (std::string refused = cluster_.Authenticate(request); !refused.empty()) {
      co_await SendJsonError(exchange, 401, "hubcache cluster: " + refused);
      co_return;
    }
    if (cold_fetch) {
      co_await ColdFetch(exchange, request);
      co_return;
    }
    // HEX?from=N
    std::string_view rest = target.substr(kBlobRoute.size());
    const std::size_t query = rest.find('?');
    std::uint64_t from = 0;
    if (query != std::string_view::npos) {
      std::string_view value = rest.substr(query + 1);
      rest = rest.substr(0, query);
      if (!value.starts_with("from=")) {
        co_await SendJsonError(exchange, 400, "expected ?from=<byte offset>");
        co_return;
      }
      value.remove_prefix(5);
      auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), from);
      if (err != std::errc() || end != value.data() + value.size() || value.empty()) {
        co_await SendJsonError(exchange, 400, "expected ?from=<byte offset>");
        co_return;
      }
    }
    co_await StreamBlob(exchange, rest, from, request.auth.node);
    co_return;
  }

  p2p::ClusterResponse answer = co_await cluster_.Handle(request);
  proxy::StringResponse response(static_cast<http::status>(answer.status), in.version());
  response.set(http::field::content_type, answer.content_type);
  response.set(http::field::cache_control, "no-store");
  response.body() = std::move(answer.body);
  co_await exchange.Send(std::move(response));
}

std::string ClusterMetrics(const p2p::Cluster& cluster) {
  const p2p::ClusterStats s = cluster.stats();
  std::string out;
  auto metric = [&out](std::string_view type, std::string_view name, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  metric("counter", "hubcache_cluster_peer_bytes_total",
         "BitTorrent payload bytes exchanged with each peer (by its IP), by direction.");
  for (const auto& [ip, traffic] : s.swarm.peers) {
    out += fmt::format("hubcache_cluster_peer_bytes_total{{peer=\"{}\",direction=\"in\"}} {}\n", ip,
                       traffic.bytes_in);
    out += fmt::format("hubcache_cluster_peer_bytes_total{{peer=\"{}\",direction=\"out\"}} {}\n",
                       ip, traffic.bytes_out);
  }
  metric("counter", "hubcache_cluster_bytes_total",
         "BitTorrent payload bytes from and to all peers.");
  out += fmt::format("hubcache_cluster_bytes_total{{direction=\"in\"}} {}\n", s.swarm.bytes_in);
  out += fmt::format("hubcache_cluster_bytes_total{{direction=\"out\"}} {}\n", s.swarm.bytes_out);
  metric("counter", "hubcache_cluster_piece_bytes_total",
         "Bytes of pieces from peers that passed their hash and were written into the store.");
  out += fmt::format("hubcache_cluster_piece_bytes_total {}\n", s.piece_bytes);
  metric("counter", "hubcache_cluster_leader_streams_total",
         "Cold blobs (no node held them) this node streamed from their leader while the leader "
         "fetched them from the Hub, by result (ok; failed: cut short, the Hub took over from "
         "there, or the attempts ran out; refused: the leader could not fetch, this node used "
         "the Hub; took_over: the leaders before it were unreachable, this node led the fetch).");
  out += fmt::format("hubcache_cluster_leader_streams_total{{result=\"ok\"}} {}\n",
                     s.leader_streams_done);
  out += fmt::format("hubcache_cluster_leader_streams_total{{result=\"failed\"}} {}\n",
                     s.leader_streams_failed);
  out += fmt::format("hubcache_cluster_leader_streams_total{{result=\"refused\"}} {}\n",
                     s.leader_refusals);
  out += fmt::format("hubcache_cluster_leader_streams_total{{result=\"took_over\"}} {}\n",
                     s.leader_took_over);
  metric("counter", "hubcache_cluster_leader_failovers_total",
         "Leaders of cold blobs found unreachable and passed over for the next in rendezvous "
         "order.");
  out += fmt::format("hubcache_cluster_leader_failovers_total {}\n", s.leader_failovers);
  metric("counter", "hubcache_cluster_leader_bytes_total",
         "Bytes streamed from leaders fetching cold blobs.");
  out += fmt::format("hubcache_cluster_leader_bytes_total {}\n", s.leader_bytes);
  metric("counter", "hubcache_cluster_fetches_total",
         "Misses that asked the cluster, by result (ok, no_holder, failed: the Hub took over).");
  out += fmt::format("hubcache_cluster_fetches_total{{result=\"ok\"}} {}\n", s.fetches_done);
  out += fmt::format("hubcache_cluster_fetches_total{{result=\"no_holder\"}} {}\n",
                     s.fetches_no_holder);
  out += fmt::format("hubcache_cluster_fetches_total{{result=\"failed\"}} {}\n", s.fetches_failed);
  metric("gauge", "hubcache_cluster_members_alive", "Live members of the cluster, this node included.");
  out += fmt::format("hubcache_cluster_members_alive {}\n", s.members_alive);
  metric("gauge", "hubcache_cluster_announce_pending",
         "Holdings and withdrawals not yet told to their blob's leader.");
  out += fmt::format("hubcache_cluster_announce_pending {}\n", s.announce_pending);
  metric("gauge", "hubcache_cluster_swarm_downloads", "Swarm downloads running now.");
  out += fmt::format("hubcache_cluster_swarm_downloads {}\n", s.swarm.downloads_running);
  metric("gauge", "hubcache_cluster_seeds_loaded", "Blobs this node's libtorrent session seeds now.");
  out += fmt::format("hubcache_cluster_seeds_loaded {}\n", s.swarm.seeds_loaded);
  metric("gauge", "hubcache_cluster_torrents",
         "Blobs with a .torrent that this node announces as held.");
  out += fmt::format("hubcache_cluster_torrents {}\n", s.torrents);
  metric("gauge", "hubcache_cluster_backfill_pending",
         "Stored blobs still waiting for their piece hashes.");
  out += fmt::format("hubcache_cluster_backfill_pending {}\n", s.backfill_pending);
  metric("gauge", "hubcache_cluster_leader_blobs", "Blobs this node leads and knows holders of.");
  out += fmt::format("hubcache_cluster_leader_blobs {}\n", s.directory_blobs);
  metric("counter", "hubcache_cluster_hash_failures_total",
         "Pieces from peers that failed their SHA-1 (fetched again from others).");
  out += fmt::format("hubcache_cluster_hash_failures_total {}\n", s.swarm.hash_failures);
  metric("counter", "hubcache_cluster_peers_banned_total",
         "Peers banned for sending pieces that failed their hash.");
  out += fmt::format("hubcache_cluster_peers_banned_total {}\n", s.swarm.peers_banned);
  metric("counter", "hubcache_cluster_requests_refused_total",
         "Cluster API requests refused for a missing or wrong signature.");
  out += fmt::format("hubcache_cluster_requests_refused_total {}\n", s.requests_refused);
  return out;
}

}  // namespace hubcache::daemon
