#include "daemon/cluster_command.h"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/errc.h"
#include "daemon/cli.h"
#include "daemon/human.h"
#include "p2p/cluster_auth.h"
#include "p2p/cluster_client.h"

namespace hubcache::daemon {

tl::expected<std::string, std::string> FetchClusterStatus(const p2p::ClusterOptions& cluster) {
  if (cluster.listen.empty()) {
    return tl::unexpected(std::string(
        "this node is not in a cluster (cluster.listen is empty); see README \"Cluster\""));
  }
  auto key = p2p::ClusterKey::FromFile(cluster.secret_file);
  if (!key) {
    return tl::unexpected(fmt::format("cannot read the cluster secret {}: {}", cluster.secret_file,
                                      key.error().message()));
  }
  // Signed as the node itself: the status route is read-only.
  p2p::ClusterClient client(*key, cluster.listen);
  net::io_context ioc;
  Result<p2p::ClusterReply> reply = Fail(core::Errc::kUnavailable);
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        reply = co_await client.Call(cluster.listen, "GET", "/_cluster/v1/status", std::string(),
                                     std::chrono::seconds(10));
      },
      [](std::exception_ptr) {});
  ioc.run();
  if (!reply) {
    return tl::unexpected(fmt::format("cannot reach the cluster API at {}: {} (is hubcache running?)",
                                      cluster.listen, reply.error().message()));
  }
  if (reply->status != 200) {
    return tl::unexpected(fmt::format("the cluster API at {} answered {}: {}", cluster.listen,
                                      reply->status, reply->body));
  }
  auto status = nlohmann::json::parse(reply->body, nullptr, false);
  if (!status.is_object() || !status.contains("members") || !status["members"].is_array()) {
    return tl::unexpected(fmt::format("unexpected answer from {}", cluster.listen));
  }
  return std::move(reply->body);
}

int ClusterStatus(const config::Loaded& loaded, bool json) {
  const p2p::ClusterOptions& cluster = loaded.config.cluster;
  auto body = FetchClusterStatus(cluster);
  if (!body) {
    std::fprintf(stderr, "hubcache: %s\n", body.error().c_str());
    return cluster.listen.empty() ? kExitUsage : kExitFailure;
  }
  auto status = nlohmann::json::parse(*body, nullptr, false);
  bool all_alive = true;
  for (const auto& m : status["members"]) {
    all_alive = all_alive && m.value("alive", false) && !m.contains("refused");
  }
  if (json) {
    std::printf("%s\n", status.dump(2).c_str());
    return all_alive ? kExitOk : kExitFailure;
  }
  std::printf("node %s (BitTorrent port %d)\n", status.value("node", std::string()).c_str(),
              status.value("torrent_port", 0));
  std::printf("%-24s %-6s %-10s %12s %12s  %s\n", "MEMBER", "STATE", "SEEN", "FROM IT", "TO IT",
              "NOTE");
  for (const auto& m : status["members"]) {
    const std::int64_t seen = m.value("seen_ms_ago", std::int64_t{-1});
    std::string note = m.value("self", false) ? "this node" : "";
    if (m.contains("refused")) note = "refuses us: " + m["refused"].get<std::string>();
    std::printf("%-24s %-6s %-10s %12s %12s  %s\n", m.value("address", std::string()).c_str(),
                m.value("alive", false) ? "up" : "down",
                seen < 0 ? "never" : HumanDuration(static_cast<double>(seen) / 1000).c_str(),
                HumanSize(m.value("bytes_in", std::uint64_t{0})).c_str(),
                HumanSize(m.value("bytes_out", std::uint64_t{0})).c_str(), note.c_str());
  }
  std::printf(
      "leads %llu blobs; announces %llu; seeding %llu now; swarm downloads: %llu running, %llu "
      "done, %llu failed; no holder for %llu misses\n",
      static_cast<unsigned long long>(status.value("leader_of", 0ull)),
      static_cast<unsigned long long>(status.value("torrents", 0ull)),
      static_cast<unsigned long long>(status.value("seeds_loaded", 0ull)),
      static_cast<unsigned long long>(status.value("swarm_downloads_running", 0ull)),
      static_cast<unsigned long long>(status.value("swarm_downloads_done", 0ull)),
      static_cast<unsigned long long>(status.value("swarm_downloads_failed", 0ull)),
      static_cast<unsigned long long>(status.value("fetches_no_holder", 0ull)));
  std::printf("from peers %s, to peers %s; piece hash failures %llu, peers banned %llu, "
              "requests refused %llu\n",
              HumanSize(status.value("bytes_from_peers", 0ull)).c_str(),
              HumanSize(status.value("bytes_to_peers", 0ull)).c_str(),
              static_cast<unsigned long long>(status.value("hash_failures", 0ull)),
              static_cast<unsigned long long>(status.value("peers_banned", 0ull)),
              static_cast<unsigned long long>(status.value("requests_refused", 0ull)));
  if (status.value("backfill_pending", 0ull) > 0) {
    std::printf("still hashing %llu stored blobs for sharing\n",
                static_cast<unsigned long long>(status.value("backfill_pending", 0ull)));
  }
  return all_alive ? kExitOk : kExitFailure;
}

}  // namespace hubcache::daemon
