// Cluster: everything a node does as a member of a cluster (DESIGN.md "P2P"),
// behind one object that daemon/ wires in.
//
//   - follows the store: every committed blob gets its canonical .torrent
//     from the piece hashes taken in the digest's own pass (a hash tap), is
//     announced to its leader, and is seeded when some node asks for it;
//     blobs that were in the store before get theirs in the background, at a
//     bounded rate; a blob about to be removed stops seeding and is withdrawn;
//   - answers the cluster API (signed requests only; p2p/cluster_auth.h):
//       GET  /_cluster/v1/health           liveness, this node's torrent port
//       POST /_cluster/v1/hold             {"digests":[hex...],"full":bool}
//       POST /_cluster/v1/drop             {"digests":[hex...]}
//       GET  /_cluster/v1/locate/HEX       (leader) holders and fetchers
//       GET  /_cluster/v1/torrent/HEX      (holder) the .torrent; starts seeding
//       GET  /_cluster/v1/status           members, traffic, swarms
//   - fetches a missing blob from the nodes that hold it (Fetch), for
//     daemon/'s peer BlobSource.
//
// The cluster moves bytes, never authority: nothing here knows of repos,
// tokens or access; a node checks its own clients' access before serving.
//
// Threads: Handle and Fetch are coroutines on the caller's executor; store
// callbacks run on the store's caller's thread (the blocking pool); the
// membership and announcement loops run on the executor given to Create.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/asio.h"
#include "core/result.h"
#include "p2p/cluster_auth.h"
#include "p2p/cluster_client.h"
#include "p2p/cold_fetch.h"
#include "p2p/directory.h"
#include "p2p/membership.h"
#include "p2p/options.h"
#include "p2p/swarm.h"
#include "p2p/torrent.h"
#include "p2p/torrent_files.h"
#include "store/blob_events.h"
#include "store/blob_store.h"

namespace hubcache::p2p {

struct ClusterRequest {
  std::string method;
  std::string target;
  std::string body;
  SignedHeaders auth;
  std::string remote;  // peer IP, for the log
};

struct ClusterResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Counters for /metrics and `hubcache cluster status`.
struct ClusterStats {
  std::uint64_t fetches_started = 0;   // misses that asked the cluster
  std::uint64_t fetches_done = 0;      // blobs received from peers
  std::uint64_t fetches_no_holder = 0; // no node held the blob
  std::uint64_t fetches_failed = 0;    // swarm failed or stalled (the Hub took over)
  std::uint64_t piece_bytes = 0;       // bytes of verified pieces written into the store
  std::uint64_t leader_streams = 0;    // cold blobs streamed from their leader, by result:
  std::uint64_t leader_streams_done = 0;
  std::uint64_t leader_streams_failed = 0;   // cut short: the Hub took over from there
  std::uint64_t leader_refusals = 0;   // the leader could not fetch (this node used the Hub)
  std::uint64_t leader_took_over = 0;  // the leaders before it were gone: this node fetched
  std::uint64_t leader_failovers = 0;  // leaders found unreachable and passed over
  std::uint64_t leader_bytes = 0;      // bytes streamed from leaders
  std::uint64_t requests_refused = 0;  // cluster requests without a valid signature
  std::uint64_t torrents = 0;          // blobs with a .torrent, announceable
  std::uint64_t backfill_pending = 0;  // blobs still waiting for their piece hashes
  std::uint64_t directory_blobs = 0;   // blobs this node leads and knows holders of
  std::uint64_t members_alive = 0;     // live members, this node included
  std::uint64_t announce_pending = 0;  // holdings or withdrawals not yet told to their leader
  SwarmStats swarm;
};

class Cluster final : public store::BlobObserver {
 public:
  // Reads the secret, starts the libtorrent session and registers with
  // `store` (observer and hash tap). Errors: the secret file's (missing, too
  // short), the BitTorrent listener's. `store` must outlive the cluster.
  static Result<std::unique_ptr<Cluster>> Create(const ClusterOptions& options,
                                                 store::BlobStore& store,
                                                 net::any_io_executor executor);
  ~Cluster() override;

  // Starts membership, announcements and the background hashing.
  void Start();
  // Stops the loops and the background hashing (before the executor stops).
  void Stop();

  // `request` must stay alive until the returned awaitable completes.
  net::awaitable<ClusterResponse> Handle(const ClusterRequest& request);
  // Counts bytes of a cold stream with another node (by its cluster
  // address) for the status page: `in` received from it, `out` sent to it.
  void CountStreamed(const std::string& node, std::uint64_t in, std::uint64_t out);
  // Checks the signature of a request to a route the daemon serves itself
  // (blob streams, leader fetches: they need the fetch coordinator). A
  // refusal is logged and counted as Handle's are. Returns why the request
  // is refused, or an empty string when its signature holds.
  std::string Authenticate(const ClusterRequest& request);

  // The cold start, on a blob's leader while it fetches the blob from the
  // Hub: the node `node` should stream it from. The first stream_fanout
  // nodes that ask stream from this node; each later one from a node that
  // asked before it, none serving more than stream_fanout others, so the
  // blob spreads down a tree. Skips nodes in `exclude` (the asker could not
  // stream from them) and nodes not live, going up the tree. Returns the
  // node's cluster address, or an empty string for this node.
  std::string StreamSource(const store::Digest& digest, const std::string& node,
                           const std::vector<std::string>& exclude);

  // Fetches `digest` from the nodes that hold it, handing each verified
  // piece to `write`. Errors: Errc::kNoHolders when no other live node holds
  // it (nothing written); anything else after a partial transfer.
  net::awaitable<Result<void>> Fetch(const store::Digest& digest, std::uint64_t size,
                                     PieceWriter write) {
    return FetchAs(this, digest, size, std::move(write));
  }

  // The cold start (DESIGN.md "Cold start"): no node holds the blob. Asks its
  // leader to fetch it from the Hub (once for the cluster, however many nodes
  // ask), then streams it from the leader while it arrives, from byte `from`
  // on, handing each run of bytes to `write` in order. `token` is the
  // requesting client's: it goes to the leader, sealed for this file only,
  // when the Hub refused the leader's own request (a gated or private file).
  //
  // A leader that cannot be reached is passed over for the next in
  // rendezvous order, and the nodes asked after are told to pass it over
  // too; when that is this node, it leads: it returns and its caller fetches
  // from the Hub from the bytes it has, while the others stream from it.
  // Errors: Errc::kNoHolders when this node is the leader (nothing written),
  // Errc::kLeaderCannotFetch when the leader did not start the fetch; the
  // stream's error after a partial transfer or once the attempts ran out
  // (the caller goes on from the Hub from the bytes it has).
  net::awaitable<Result<void>> FetchFromLeader(ColdFetch ask, Secret token, std::uint64_t from,
                                               PieceWriter write) {
    return FetchFromLeaderAs(this, std::move(ask), std::move(token), from, std::move(write));
  }
  // The leader side of a cold fetch: passes over the leaders the asker could
  // not reach (never this node), and opens the client's token the asker
  // sealed. Errors: core::Errc::kInvalidArgument when the token does not open
  // (another key, another file, altered).
  Result<Secret> AcceptColdFetch(const ColdFetch& ask);

  ClusterStats stats() const;
  // The status document (members, traffic, swarms), as GET /_cluster/v1/status.
  std::string StatusJson() const;
  const std::string& self() const { return options_.listen; }
  // This node's HTTP endpoint for clients, told to the other members.
  void SetClientUrl(std::string url) { membership_->SetClientUrl(std::move(url)); }
  std::uint16_t torrent_port() const { return swarm_->port(); }
  bool has_others() const { return !membership_->LiveOthers().empty(); }

  // store::BlobObserver
  void OnCommitted(const store::CommittedBlob& blob) override;
  void OnRemoving(const store::Digest& digest) override;

 private:
  Cluster(const ClusterOptions& options, store::BlobStore& store, net::any_io_executor executor,
          ClusterKey key, std::unique_ptr<Swarm> swarm);

  net::awaitable<ClusterResponse> Route(const ClusterRequest& request);
  ClusterResponse Locate(const std::string& hex, const std::string& requester);
  net::awaitable<ClusterResponse> TorrentOf(const std::string& hex);
  void Refused(const ClusterRequest& request, AuthVerdict verdict);

  struct Located {
    bool ok = false;  // the leader answered
    std::vector<std::string> holders;   // live, other than this node
    std::vector<std::string> fetching;  // live, other than this node
  };
  // Static coroutines: GCC 12 mishandles by-value parameters of member ones.
  static net::awaitable<Located> FindHolders(Cluster* self, const store::Digest& digest);
  static net::awaitable<Result<void>> FetchAs(Cluster* self, store::Digest digest,
                                              std::uint64_t size, PieceWriter write);
  net::awaitable<Result<void>> FetchBody(const store::Digest& digest, std::uint64_t size,
                                         PieceWriter& write);
  static net::awaitable<Result<void>> FetchFromLeaderAs(Cluster* self, ColdFetch ask, Secret token,
                                                        std::uint64_t from, PieceWriter write);
  // The first live member in rendezvous order that no node found
  // unreachable lately.
  std::string LeaderOf(const store::Digest& digest);
  void PassOver(const std::string& node);
  struct SwarmWatch {
    std::atomic<bool> done{false};
    std::string torrent;
    std::set<std::string> known;  // nodes already handed to libtorrent (or refused)
    std::set<std::string> wave;   // nodes fetching the blob now, this one included
    std::uint64_t size = 0;
  };
  // Tells the swarm which pieces are this node's share of the wave.
  void PreferShare(const store::Digest& digest, const SwarmWatch& watch);
  static net::awaitable<void> FollowSwarm(Cluster* self, store::Digest digest,
                                          std::shared_ptr<SwarmWatch> watch);

  net::awaitable<void> AnnounceLoop();
  net::awaitable<void> Announce(bool full);
  void Backfill();

  const ClusterOptions options_;
  store::BlobStore& store_;
  net::any_io_executor executor_;
  const ClusterKey key_;
  ClusterClient client_;
  std::unique_ptr<Swarm> swarm_;
  std::unique_ptr<Membership> membership_;
  Directory directory_;
  TorrentFiles torrents_;

  std::atomic<bool> stopped_{false};
  std::thread backfill_;

  // Piece hashes from the hash tap, waiting for their blob's commit. Shared
  // with the tap factory the store keeps, which may outlive the cluster.
  struct HashInbox {
    std::mutex mu;
    bool open = true;                            // GUARDED_BY(mu)
    std::map<std::string, PieceHashes> pending;  // GUARDED_BY(mu)
  };
  std::shared_ptr<HashInbox> inbox_ = std::make_shared<HashInbox>();

  mutable std::mutex mu_;
  // Blobs with a .torrent that this node announces: hex → size.
  std::map<std::string, std::uint64_t> held_;          // GUARDED_BY(mu_)
  std::set<std::string> to_announce_;                  // GUARDED_BY(mu_)
  std::set<std::string> to_withdraw_;                  // GUARDED_BY(mu_)
  std::map<std::string, std::chrono::steady_clock::time_point> refusal_logged_;  // GUARDED_BY(mu_)
  std::uint64_t backfill_pending_ = 0;                 // GUARDED_BY(mu_)

  std::atomic<std::uint64_t> announcing_{0};  // holdings in an announcement in flight
  std::atomic<std::uint64_t> fetches_started_{0};
  std::atomic<std::uint64_t> fetches_done_{0};
  std::atomic<std::uint64_t> piece_bytes_{0};
  // Cold blobs being streamed, by hex: the nodes that asked, in order.
  struct StreamTree {
    std::vector<std::string> nodes;
    std::chrono::steady_clock::time_point started;
  };
  std::map<std::string, StreamTree> trees_;  // GUARDED_BY(mu_)
  // Leaders found unreachable (by this node or an asker), until when they
  // are passed over (membership takes a while to see them dead).
  std::map<std::string, std::chrono::steady_clock::time_point> passed_over_;  // GUARDED_BY(mu_)
  std::atomic<std::uint64_t> leader_took_over_{0};
  std::atomic<std::uint64_t> leader_failovers_{0};
  std::atomic<std::uint64_t> leader_streams_{0};
  std::atomic<std::uint64_t> leader_streams_done_{0};
  std::atomic<std::uint64_t> leader_streams_failed_{0};
  std::atomic<std::uint64_t> leader_refusals_{0};
  std::atomic<std::uint64_t> leader_bytes_{0};
  // Bytes of cold streams by the other node's cluster address (members
  // only: every stream request is signed).
  std::map<std::string, PeerTraffic> streamed_;  // GUARDED_BY(mu_)
  std::atomic<std::uint64_t> fetches_no_holder_{0};
  std::atomic<std::uint64_t> fetches_failed_{0};
  std::atomic<std::uint64_t> requests_refused_{0};
};

}  // namespace hubcache::p2p
