#include "daemon/cluster_glue.h"

#include <fmt/format.h>

#include "p2p/errc.h"
#include "proxy/errc.h"

namespace hubcache::daemon {

net::awaitable<Result<void>> PeerSource::Fill(const proxy::BlobRequest& request,
                                              proxy::BlobSink& sink) {
  if (!cluster_.has_others()) co_return Fail(proxy::Errc::kSourceUnavailable);
  // Writes go through the fetch's sink: the store's writer, its hash pass
  // and the readers following the download.
  p2p::PieceWriter write = [&sink](std::uint64_t offset,
                                   std::span<const std::uint8_t> bytes) {
    return sink.WriteAt(offset, bytes);
  };
  auto fetched = co_await cluster_.Fetch(request.digest, request.size, std::move(write));
  if (!fetched && fetched.error() == p2p::Errc::kNoHolders) {
    co_return Fail(proxy::Errc::kSourceUnavailable);
  }
  co_return fetched;
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
