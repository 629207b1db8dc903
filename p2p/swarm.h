// Swarm: this node's libtorrent session (DESIGN.md "P2P"; the settings and
// their reasons are in notes/P2P_NOTES.md §4).
//
// It seeds blobs in place from blobs/ (seed mode, every piece marked
// verified: the store verified the whole digest before committing) and
// downloads blobs from other nodes into a scratch directory, handing each
// piece to the caller as soon as libtorrent has checked its SHA-1, so the
// caller can write it into the store's writer at its offset while clients
// stream from the first bytes. libtorrent writes the scratch file; the store
// never sees a byte that did not pass a piece hash.
//
// Memory follows the swarms in flight, not the store: a seed is loaded when a
// node asks for it (Seed), and unloaded once no peer has used it for
// `seed_idle`. Settings for a trusted LAN: TCP only, no encryption, no DHT,
// LSD, UPnP or NAT-PMP, several connections per IP, everyone unchoked.
//
// Threads: libtorrent runs its own network and disk threads. Alerts are
// handled on the swarm's own thread (set_alert_notify posts to it), which is
// also where the blocking libtorrent queries run (peer lists, for the
// per-peer counters); no event loop of the HTTP server ever waits on
// libtorrent. Every public method is thread-safe and returns at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/asio.h"
#include "core/result.h"
#include "store/digest.h"

namespace hubcache::p2p {

struct SwarmOptions {
  std::string listen_host;     // an IP literal
  std::uint16_t port = 0;      // 0: any free port (tests)
  std::uint64_t upload_rate_limit = 0;  // bytes/s for all peers together; 0 = none
  std::filesystem::path scratch_dir;    // where downloads land before the store has them
  std::chrono::milliseconds seed_idle{120'000};
};

// Bytes exchanged with one remote IP since the session started.
struct PeerTraffic {
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

struct SwarmStats {
  std::uint64_t seeds_loaded = 0;
  std::uint64_t downloads_running = 0;
  std::uint64_t downloads_done = 0;
  std::uint64_t downloads_failed = 0;
  std::uint64_t hash_failures = 0;  // pieces that failed their SHA-1 (then fetched again)
  std::uint64_t peers_banned = 0;   // peers libtorrent banned for bad pieces
  std::uint64_t seeds_dropped = 0;  // seeds whose file could not be read (evicted, failing disk)
  std::uint64_t bytes_in = 0;       // payload received from peers
  std::uint64_t bytes_out = 0;      // payload sent to peers
  std::map<std::string, PeerTraffic> peers;  // by remote IP
};

// Receives one verified piece: its bytes start at `offset` of the blob. The
// span is valid until the returned awaitable completes.
using PieceWriter =
    std::function<net::awaitable<Result<void>>(std::uint64_t offset, std::span<const std::uint8_t>)>;

class Swarm {
 public:
  // Starts the session listening on options.listen_host:port. Errors: the
  // listen error (address in use, not a local address).
  static Result<std::unique_ptr<Swarm>> Create(SwarmOptions options);
  // Stops the session (libtorrent's final sync runs here; may take a moment).
  ~Swarm();
  Swarm(const Swarm&) = delete;
  Swarm& operator=(const Swarm&) = delete;

  std::uint16_t port() const { return port_; }

  // Seeds the blob whose file is at `path` with `torrent` (its canonical
  // .torrent, p2p/torrent.h), or keeps seeding it (refreshes its idle
  // clock). Errors only in the log: a file of the wrong size makes libtorrent
  // drop seed mode and recheck, which a corrupt blob then fails.
  void Seed(const store::Digest& digest, std::string torrent, std::filesystem::path path);
  // Stops seeding `digest` before its file goes (the store's OnRemoving).
  // Reads libtorrent has in flight finish on the open inode.
  void Unseed(const store::Digest& digest);

  // Downloads the blob described by `torrent` from `peers`, handing each
  // verified piece to `write` in the order they complete: the 2 pieces after
  // the last contiguous one written carry deadlines (what readers need next),
  // then this node's share (Prefer), then the rest, rarest first. Returns
  // when every piece was written, or fails: Errc::kStalled when no piece
  // arrived for `stall_timeout`, Errc::kPeersGone as soon as every peer it
  // was given (here or by AddPeers) has closed its connection and none is
  // connected (holders that dropped the blob), the writer's
  // error, libtorrent's error (disk full in the scratch directory). The
  // scratch file is removed either way. Runs on the caller's executor; the
  // swarm must outlive it.
  net::awaitable<Result<void>> Download(const store::Digest& digest, std::string torrent,
                                        std::vector<net::ip::tcp::endpoint> peers,
                                        PieceWriter write, std::chrono::milliseconds stall_timeout);

  // Adds peers to a download in progress (new holders found meanwhile).
  void AddPeers(const store::Digest& digest, std::vector<net::ip::tcp::endpoint> peers);
  // Asks for the pieces marked in `first` before the others (this node's
  // share of a wave, p2p/membership.h WaveShare); an empty vector asks for
  // every piece alike. The deadlines of the pieces readers need next still
  // come first. May be called before the download starts.
  void Prefer(const store::Digest& digest, std::vector<bool> first);

  SwarmStats stats() const;
  bool IsSeeding(const store::Digest& digest) const;

  struct Impl;

 private:
  explicit Swarm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace hubcache::p2p
