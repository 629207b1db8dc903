// Membership: which nodes form the cluster, which of them are alive, and who
// leads each blob (DESIGN.md "P2P", "Directory").
//
// Members come from cluster.peers and/or cluster.dns (re-resolved every
// dns_interval, as a Kubernetes headless Service gives). Every
// health_interval each other member is asked for /_cluster/v1/health with a
// signed request; one that has not answered for dead_after drops out of every
// decision until it answers again. A member that refuses our signature (no
// secret, another secret) is logged once per change, with the reason it gave.
//
// A blob's leader is the first live member in rendezvous order: members
// ranked by SHA-256(digest ‖ address), so every node that sees the same live
// set picks the same leader, and when one leaves only its blobs move.
//
// Executor: the loops run on the executor given; queries are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/asio.h"
#include "p2p/cluster_client.h"
#include "p2p/options.h"
#include "store/digest.h"

namespace hubcache::p2p {

// Rendezvous score of `address` for `digest`: the first 8 bytes of
// SHA-256(digest ‖ address). The highest score leads.
std::uint64_t RendezvousScore(const store::Digest& digest, const std::string& address);

// The pieces `self` asks for first when the nodes of `wave` (`self`
// included) download one blob of `pieces` pieces at the same time: each
// piece belongs to the wave member with the highest rendezvous score for it,
// so the members divide the blob in about equal shares, ask the holders for
// different pieces and trade the rest among themselves. A member joining or
// leaving moves only its own share. Empty when the wave is `self` alone.
std::vector<bool> WaveShare(const store::Digest& digest, std::size_t pieces,
                            const std::vector<std::string>& wave, const std::string& self);

struct MemberView {
  std::string address;      // cluster address, host:port
  bool self = false;
  bool alive = false;
  std::string torrent;      // its BitTorrent listener, ip:port ("" until known)
  std::string client;       // its HTTP endpoint for clients ("" until known)
  std::int64_t seen_ms_ago = -1;  // -1: never answered
  std::string refused;      // why it refused our requests, if it does
};

class Membership {
 public:
  // `self_torrent` is this node's BitTorrent endpoint (ip:port), reported to
  // the others in the health answer.
  Membership(net::any_io_executor executor, const ClusterOptions& options,
             const ClusterClient& client, std::string self_torrent);
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  void Start();
  // Stops the loops (they end at their next wake-up).
  void Stop();

  const std::string& self() const { return self_; }
  // This node's HTTP endpoint for clients (http://host:port), reported to
  // the others in the health answer (a cluster prefetch asks each node
  // there). Set once the client listener is bound.
  void SetClientUrl(std::string url);
  // Live members, this node included, in rendezvous order for `digest`.
  std::vector<std::string> Ranked(const store::Digest& digest) const;
  // Live members other than this node.
  std::vector<std::string> LiveOthers() const;
  bool IsLive(const std::string& address) const;
  // The BitTorrent endpoint a live member reported.
  std::optional<net::ip::tcp::endpoint> TorrentEndpoint(const std::string& address) const;
  // The cluster address of the member whose BitTorrent endpoint has `ip`.
  std::string AddressOfIp(const std::string& ip) const;
  // Bumped whenever the live set changes.
  std::uint64_t generation() const { return generation_.load(); }
  std::vector<MemberView> Snapshot() const;

  // The health answer: {"node": self, "torrent": "ip:port", "client": url}.
  std::string HealthBody() const;

 private:
  struct Member {
    bool from_dns = false;
    bool from_list = false;
    bool alive = false;
    bool checking = false;
    std::string torrent;
    std::string client;
    std::chrono::steady_clock::time_point last_ok{};
    bool ever_ok = false;
    std::string refused;
  };

  net::awaitable<void> HealthLoop();
  net::awaitable<void> DnsLoop();
  // Static: GCC 12 mishandles by-value parameters of member coroutines.
  static net::awaitable<void> Check(Membership* self, std::string address);
  void Resolved(const std::vector<std::string>& addresses);
  void UpdateLiveness();

  net::any_io_executor executor_;
  const ClusterOptions options_;
  const ClusterClient& client_;
  const std::string self_;
  const std::string self_torrent_;
  std::atomic<bool> stopped_{false};
  std::atomic<std::uint64_t> generation_{0};

  mutable std::mutex mu_;
  std::map<std::string, Member> members_;  // GUARDED_BY(mu_), this node excluded
  std::string self_client_;                // GUARDED_BY(mu_)
};

}  // namespace hubcache::p2p
