#include "p2p/swarm.h"

#include <libtorrent/alert_types.hpp>
#include <libtorrent/error_code.hpp>
#include <libtorrent/operations.hpp>
#include <libtorrent/peer_class.hpp>
#include <libtorrent/peer_info.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_flags.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>

#include <algorithm>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/errc.h"
#include "core/log.h"
#include "p2p/errc.h"

namespace hubcache::p2p {
namespace {

constexpr auto kModule = log::Module::kP2p;
using SteadyClock = std::chrono::steady_clock;
// Pieces read back from libtorrent but not yet written by the downloader:
// bounds a download's memory to this many pieces whatever the disk does.
constexpr int kMaxPiecesInMemory = 8;
constexpr auto kHousekeeping = std::chrono::seconds(2);
// Pieces from the first one a download is missing that get a deadline (the
// part the node's clients are about to read); the others come by the node's
// share of its wave (Prefer), then rarest first. Every node of a wave has its
// deadlines at about the same pieces, which they all pull from the holder
// before anyone can trade them: a window of 8 pieces made the holder send 40%
// more than one copy to four receivers and took 1.9x one receiver's time; a
// window of 2 keeps readers fed and costs 1.3x (bench/RESULTS.md, issue 16).
constexpr int kDeadlineWindow = 2;

lt::settings_pack LanSettings(const SwarmOptions& options) {
  lt::settings_pack s;
  const std::string host = options.listen_host.find(':') != std::string::npos
                               ? "[" + options.listen_host + "]"
                               : options.listen_host;
  s.set_str(lt::settings_pack::listen_interfaces, host + ":" + std::to_string(options.port));
  s.set_str(lt::settings_pack::outgoing_interfaces, options.listen_host);
  // The other nodes are told this exact port: no silent fallback to another.
  s.set_int(lt::settings_pack::max_retry_port_bind, 0);
  s.set_bool(lt::settings_pack::listen_system_port_fallback, false);
  s.set_str(lt::settings_pack::user_agent, "hubcache");
  s.set_str(lt::settings_pack::peer_fingerprint, "-HC0100-");
  // Discovery: the directory hands out peers; nothing leaves the cluster.
  s.set_bool(lt::settings_pack::enable_dht, false);
  s.set_bool(lt::settings_pack::enable_lsd, false);
  s.set_bool(lt::settings_pack::enable_upnp, false);
  s.set_bool(lt::settings_pack::enable_natpmp, false);
  s.set_str(lt::settings_pack::dht_bootstrap_nodes, "");
  // TCP only: uTP runs at a few MB/s on a LAN (P2P_NOTES §7.1).
  s.set_bool(lt::settings_pack::enable_outgoing_utp, false);
  s.set_bool(lt::settings_pack::enable_incoming_utp, false);
  s.set_int(lt::settings_pack::mixed_mode_algorithm, lt::settings_pack::prefer_tcp);
  // No obfuscation: it costs CPU and zero-copy sends, and hides nothing here.
  s.set_int(lt::settings_pack::out_enc_policy, lt::settings_pack::pe_disabled);
  s.set_int(lt::settings_pack::in_enc_policy, lt::settings_pack::pe_disabled);
  s.set_int(lt::settings_pack::allowed_enc_level, lt::settings_pack::pe_plaintext);
  // Nodes behind one address (NAT, tests on one host) must all connect.
  s.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
  // Everyone is unchoked: a cluster shares, it does not bargain.
  s.set_int(lt::settings_pack::choking_algorithm, lt::settings_pack::fixed_slots_choker);
  s.set_int(lt::settings_pack::unchoke_slots_limit, -1);
  s.set_int(lt::settings_pack::connections_limit, 2000);
  s.set_int(lt::settings_pack::connection_speed, 200);
  s.set_bool(lt::settings_pack::smooth_connects, false);
  s.set_int(lt::settings_pack::peer_connect_timeout, 3);
  s.set_int(lt::settings_pack::min_reconnect_time, 1);
  // libtorrent's once-a-second work runs on the first tick after its second
  // is up: within 100 ms of it, not 500 (a few wake-ups a second when idle).
  // New downloads connect their peers at once (see torrent_checked_alert).
  s.set_int(lt::settings_pack::tick_interval, 100);
  // Deep pipelines for a fast, short link (high_performance_seed()).
  s.set_int(lt::settings_pack::max_out_request_queue, 1500);
  s.set_int(lt::settings_pack::max_allowed_in_request_queue, 2000);
  s.set_int(lt::settings_pack::send_buffer_watermark, 3 * 1024 * 1024);
  s.set_int(lt::settings_pack::send_buffer_low_watermark, 1024 * 1024);
  s.set_int(lt::settings_pack::send_buffer_watermark_factor, 150);
  s.set_int(lt::settings_pack::max_queued_disk_bytes, 7 * 1024 * 1024);
  s.set_int(lt::settings_pack::file_pool_size, 500);
  s.set_int(lt::settings_pack::aio_threads, 4);
  s.set_int(lt::settings_pack::hashing_threads, 1);
  s.set_int(lt::settings_pack::disk_write_mode, lt::settings_pack::always_pwrite);
  // Block alerts (the traffic per peer) come at up to ~16k a second each way
  // at 250 MB/s; a full queue drops alerts of any kind (a piece's finished
  // alert among them, which would stall its download into the Hub
  // fallback), so leave a backlog of seconds. Memory is taken only by
  // alerts actually waiting.
  s.set_int(lt::settings_pack::alert_queue_size, 100000);
  s.set_int(lt::settings_pack::alert_mask,
            static_cast<int>(static_cast<std::uint32_t>(
                lt::alert_category::status | lt::alert_category::error |
                lt::alert_category::storage | lt::alert_category::piece_progress |
                lt::alert_category::peer |
                // Peers that leave a download (peer_disconnected_alert).
                lt::alert_category::connect |
                // A block in or out, with its peer: the traffic per peer,
                // counted exactly however short the transfer.
                lt::alert_category::block_progress | lt::alert_category::upload)));
  if (options.upload_rate_limit > 0) {
    s.set_int(lt::settings_pack::upload_rate_limit,
              static_cast<int>(std::min<std::uint64_t>(options.upload_rate_limit, INT32_MAX)));
  }
  return s;
}

struct ReadyPiece {
  int index = 0;
  boost::shared_array<char> buffer;
  int size = 0;
  ErrorCode error;
};

}  // namespace

// What a downloading coroutine and the swarm thread share.
struct DownloadState {
  std::mutex mu;
  std::deque<ReadyPiece> ready;  // GUARDED_BY(mu)
  ErrorCode failure;             // GUARDED_BY(mu)
  // The coroutine's strand and its wake-up timer (touched only there).
  net::any_io_executor strand;
  net::steady_timer* wake = nullptr;
  // Swarm thread only:
  std::deque<int> finished_unread;
  std::atomic<int> reads_in_flight{0};
  // The peers it was given that have not left it yet (closed a connection
  // on us); see peer_disconnected_alert.
  std::vector<net::ip::tcp::endpoint> staying;
  // Set by the swarm thread once it holds no reference to this state any
  // more; the coroutine waits for it, so that the last reference (and with
  // it the strand of the caller's io_context) dies on the caller's side.
  std::atomic<bool> released{false};

  void Notify(const std::shared_ptr<DownloadState>& self) {
    net::post(strand, [self] {
      if (self->wake != nullptr) self->wake->cancel();
    });
  }
  // Fails the download (the first cause is kept) and wakes its coroutine.
  void Fail(const std::shared_ptr<DownloadState>& self, ErrorCode why) {
    {
      std::lock_guard lock(mu);
      if (!failure) failure = why;
    }
    Notify(self);
  }
};

struct Entry {
  enum class Kind { kSeed, kDownload };
  std::string hex;
  Kind kind = Kind::kSeed;
  lt::torrent_handle handle;
  bool added = false;
  bool remove_when_added = false;
  // Remove() asked libtorrent to drop it: from then on its handle may turn
  // invalid at any moment, and every call on an invalid handle throws.
  bool removed = false;
  lt::remove_flags_t remove_flags = {};
  SteadyClock::time_point last_active = SteadyClock::now();
  std::shared_ptr<DownloadState> download;
  int pieces = 0;
  std::int64_t piece_length = 0;
  std::int64_t size = 0;
  int deadlines_until = 0;  // pieces below this one were given deadlines
};

// Piece priorities for a download: its share first, the rest after; the
// pieces with deadlines stay at the top (libtorrent's time-critical picker
// takes only top-priority pieces).
std::vector<lt::download_priority_t> Priorities(const std::vector<bool>& first,
                                                int deadlines_until) {
  std::vector<lt::download_priority_t> out;
  const bool any = std::find(first.begin(), first.end(), true) != first.end();
  out.reserve(first.size());
  for (std::size_t piece = 0; piece < first.size(); ++piece) {
    if (static_cast<int>(piece) < deadlines_until || (any && first[piece])) {
      out.push_back(lt::top_priority);
    } else {
      out.push_back(any ? lt::low_priority : lt::default_priority);
    }
  }
  return out;
}

struct Swarm::Impl {
  explicit Impl(SwarmOptions o) : options(std::move(o)) {}

  SwarmOptions options;
  std::unique_ptr<lt::session> session;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  std::thread thread;
  std::unique_ptr<net::steady_timer> housekeeping;

  // Swarm thread only.
  std::map<std::string, std::shared_ptr<Entry>> by_hex;
  std::unordered_map<lt::torrent_handle, std::shared_ptr<Entry>> by_handle;
  // Payload per remote IP counted in the alert batch being handled, added
  // to the stats once per batch.
  std::map<std::string, PeerTraffic> batch_traffic;
  // Preferences given before their download was added, by hex (dropped by
  // housekeeping when no download claims them).
  std::map<std::string, std::pair<std::vector<bool>, SteadyClock::time_point>> early_preferences;

  // Any thread.
  mutable std::mutex mu;
  SwarmStats stats;                                   // GUARDED_BY(mu)
  std::map<std::string, lt::torrent_handle> seeds;   // GUARDED_BY(mu): added seeds, by hex

  void OnAlerts();
  void Handle(lt::alert* alert);
  void CountBlock(const lt::torrent_handle& handle, const net::ip::tcp::endpoint& peer,
                  lt::piece_index_t piece, int block, bool in);
  void DoSeed(const std::string& hex, std::string torrent, std::filesystem::path path);
  void DoDownload(const std::string& hex, std::shared_ptr<lt::torrent_info> ti,
                  std::vector<net::ip::tcp::endpoint> peers, std::shared_ptr<DownloadState> state);
  void Remove(std::shared_ptr<Entry> entry, lt::remove_flags_t flags);
  void PumpReads(Entry& entry);
  // Stops offering a seed whose file is gone or unreadable, and counts it.
  void DropSeed(const std::shared_ptr<Entry>& entry);
  void SetDeadlines(const std::string& hex, int first, int last);
  void ApplyPreference(Entry& entry, const std::vector<bool>& first);
  void Housekeeping();
  void ScheduleHousekeeping();
  // The live entry of a handle; null once it is being removed (its later
  // alerts, a second file error say, are of no use and its handle must not
  // be called).
  std::shared_ptr<Entry> FindHandle(const lt::torrent_handle& handle) {
    auto it = by_handle.find(handle);
    return it == by_handle.end() || it->second->removed ? nullptr : it->second;
  }
};

Result<std::unique_ptr<Swarm>> Swarm::Create(SwarmOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  std::error_code fs_ec;
  std::filesystem::create_directories(impl->options.scratch_dir, fs_ec);
  if (fs_ec) return Fail(ErrorCode(fs_ec.value(), boost::system::generic_category()));
  lt::session_params params(LanSettings(impl->options));
  // session_params brings libtorrent's default extensions: ut_pex (the nodes
  // of a wave also learn of each other from their peers), ut_metadata, and
  // smart_ban (finds the peer behind a bad piece).
  try {
    impl->session = std::make_unique<lt::session>(std::move(params));
  } catch (const std::exception& e) {
    log::Error(kModule, "swarm_start_failed", {{"error", e.what()}});
    return Fail(core::Errc::kUnavailable);
  }
  if (impl->options.upload_rate_limit > 0) {
    // Peers on 127/8 and private ranges sit in the local class, which the
    // global limit does not cover: give it the same limit.
    lt::peer_class_info local = impl->session->get_peer_class(lt::session::local_peer_class_id);
    local.upload_limit =
        static_cast<int>(std::min<std::uint64_t>(impl->options.upload_rate_limit, INT32_MAX));
    impl->session->set_peer_class(lt::session::local_peer_class_id, local);
  }
  // Wait for the listener before anyone is told our port.
  const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  std::uint16_t port = 0;
  ErrorCode listen_error;
  while (port == 0 && !listen_error && SteadyClock::now() < deadline) {
    impl->session->wait_for_alert(lt::milliseconds(200));
    std::vector<lt::alert*> alerts;
    impl->session->pop_alerts(&alerts);
    for (lt::alert* a : alerts) {
      if (auto* ok = lt::alert_cast<lt::listen_succeeded_alert>(a);
          ok != nullptr && ok->socket_type == lt::socket_type_t::tcp) {
        port = ok->port;
      } else if (auto* failed = lt::alert_cast<lt::listen_failed_alert>(a);
                 failed != nullptr && failed->socket_type == lt::socket_type_t::tcp) {
        log::Error(kModule, "swarm_listen_failed",
                   {{"address", failed->address.to_string()},
                    {"port", failed->port},
                    {"error", failed->error.message()}});
        listen_error = failed->error ? failed->error : ErrorCode(core::Errc::kUnavailable);
      }
    }
  }
  if (port == 0) {
    impl->session->abort();
    return Fail(listen_error ? listen_error : ErrorCode(core::Errc::kUnavailable));
  }
  Impl* raw = impl.get();
  impl->session->set_alert_notify([raw] { net::post(raw->ioc, [raw] { raw->OnAlerts(); }); });
  impl->housekeeping = std::make_unique<net::steady_timer>(impl->ioc);
  impl->ScheduleHousekeeping();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  std::unique_ptr<Swarm> swarm(new Swarm(std::move(impl)));
  swarm->port_ = port;
  log::Info(kModule, "swarm_started",
            {{"address", swarm->impl_->options.listen_host}, {"port", port}});
  return swarm;
}

Swarm::Swarm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Swarm::~Swarm() {
  impl_->session->set_alert_notify([] {});
  net::post(impl_->ioc, [impl = impl_.get()] {
    impl->housekeeping->cancel();
    impl->work.reset();
    // Wake any downloader still waiting: the session is going away.
    for (auto& [hex, entry] : impl->by_hex) {
      if (entry->download) {
        entry->download->Fail(entry->download, core::Errc::kUnavailable);
        entry->download->released = true;
      }
    }
    impl->by_hex.clear();
    impl->by_handle.clear();
  });
  impl_->thread.join();
  lt::session_proxy proxy = impl_->session->abort();
  impl_->session.reset();
}

void Swarm::Impl::ScheduleHousekeeping() {
  housekeeping->expires_after(kHousekeeping);
  housekeeping->async_wait([this](ErrorCode ec) {
    if (ec) return;
    Housekeeping();
    ScheduleHousekeeping();
  });
}

void Swarm::Impl::OnAlerts() {
  std::vector<lt::alert*> alerts;
  session->pop_alerts(&alerts);
  for (lt::alert* a : alerts) {
    // libtorrent throws from any call on a torrent that is gone; one such
    // call must cost one alert, not the process.
    try {
      Handle(a);
    } catch (const std::exception& e) {
      log::Error(kModule, "swarm_alert_failed", {{"alert", a->message()}, {"error", e.what()}});
    }
  }
  if (batch_traffic.empty()) return;
  std::lock_guard lock(mu);
  for (const auto& [ip, d] : batch_traffic) {
    stats.peers[ip].bytes_in += d.bytes_in;
    stats.peers[ip].bytes_out += d.bytes_out;
    stats.bytes_in += d.bytes_in;
    stats.bytes_out += d.bytes_out;
  }
  batch_traffic.clear();
}

void Swarm::Impl::CountBlock(const lt::torrent_handle& handle, const net::ip::tcp::endpoint& peer,
                             lt::piece_index_t piece, int block, bool in) {
  // Not FindHandle: a torrent being removed still moved these bytes. Its
  // entry stays in by_handle until the removed alert, which comes after.
  auto it = by_handle.find(handle);
  if (it == by_handle.end()) return;
  const Entry& entry = *it->second;
  const std::int64_t offset =
      static_cast<std::int64_t>(static_cast<int>(piece)) * entry.piece_length +
      static_cast<std::int64_t>(block) * lt::default_block_size;
  if (offset < 0 || offset >= entry.size) return;
  const auto bytes =
      static_cast<std::uint64_t>(std::min<std::int64_t>(lt::default_block_size, entry.size - offset));
  PeerTraffic& traffic = batch_traffic[peer.address().to_string()];
  (in ? traffic.bytes_in : traffic.bytes_out) += bytes;
}

void Swarm::Impl::Handle(lt::alert* a) {
  if (auto* added = lt::alert_cast<lt::add_torrent_alert>(a)) {
    Entry* raw = added->params.userdata.get<Entry>();
    if (raw == nullptr) return;
    auto it = by_hex.find(raw->hex);
    if (it == by_hex.end() || it->second.get() != raw) {
      // Forgotten while being added (session stopping): drop it again.
      if (!added->error) session->remove_torrent(added->handle);
      return;
    }
    std::shared_ptr<Entry> entry = it->second;
    if (added->error) {
      log::Warn(kModule, "torrent_add_failed",
                {{"digest", entry->hex}, {"error", added->error.message()}});
      if (entry->download) entry->download->Fail(entry->download, added->error);
      by_hex.erase(it);
      return;
    }
    entry->handle = added->handle;
    entry->added = true;
    by_handle[entry->handle] = entry;
    if (entry->kind == Entry::Kind::kSeed) {
      std::lock_guard lock(mu);
      seeds[entry->hex] = entry->handle;
      stats.seeds_loaded = seeds.size();
    }
    if (entry->remove_when_added) {
      Remove(entry, entry->remove_flags);
    } else if (entry->download && added->params.ti) {
      if (auto early = early_preferences.find(entry->hex); early != early_preferences.end()) {
        ApplyPreference(*entry, early->second.first);
        early_preferences.erase(early);
      }
      SetDeadlines(entry->hex, 0, std::min(added->params.ti->num_pieces(), kDeadlineWindow));
    }
    return;
  }
  if (auto* block = lt::alert_cast<lt::block_finished_alert>(a)) {
    CountBlock(block->handle, block->endpoint, block->piece_index, block->block_index, true);
    return;
  }
  if (auto* block = lt::alert_cast<lt::block_uploaded_alert>(a)) {
    CountBlock(block->handle, block->endpoint, block->piece_index, block->block_index, false);
    return;
  }
  if (auto* checked = lt::alert_cast<lt::torrent_checked_alert>(a)) {
    // libtorrent connects to a new torrent's peers on its once-a-second
    // tick (0.5 s lost on average, most of a small blob's transfer), unless
    // a "connect boost" runs: on a tracker's answer, or when a checked
    // torrent is resumed. We have no tracker; pausing and resuming the
    // download once it is checked (it has no connections yet) connects its
    // peers at once. 4 MiB from a loaded seed: 600-700 ms -> under 100 ms.
    auto entry = FindHandle(checked->handle);
    if (entry && entry->download) {
      entry->handle.pause();
      entry->handle.resume();
    }
    return;
  }
  if (auto* finished = lt::alert_cast<lt::piece_finished_alert>(a)) {
    auto entry = FindHandle(finished->handle);
    if (!entry || !entry->download) return;
    entry->download->finished_unread.push_back(static_cast<int>(finished->piece_index));
    PumpReads(*entry);
    return;
  }
  if (auto* read = lt::alert_cast<lt::read_piece_alert>(a)) {
    auto entry = FindHandle(read->handle);
    if (!entry || !entry->download) return;
    {
      std::lock_guard lock(entry->download->mu);
      entry->download->ready.push_back(ReadyPiece{.index = static_cast<int>(read->piece),
                                                  .buffer = read->buffer,
                                                  .size = read->size,
                                                  .error = read->error});
    }
    entry->download->Notify(entry->download);
    return;
  }
  if (auto* gone = lt::alert_cast<lt::peer_disconnected_alert>(a)) {
    // A holder that evicts the blob drops its seed and with it our
    // connection; libtorrent would retry it, and it refuses. Once every
    // peer the download was given has closed on it and none is connected,
    // it would wait out cluster.stall_timeout for nothing (1.5% of swarm
    // downloads in the soak, 10 s each): fail it now, and the next source
    // takes over. Only the remote closing counts: not a connection that
    // never came up (the stall timeout covers peers slow to answer), nor
    // this node's own disconnects (the pause that starts the download, a
    // ban after a failed piece, which libtorrent may lift).
    if (gone->op == lt::operation_t::connect) return;
    if (gone->error != boost::asio::error::eof &&
        gone->error != boost::asio::error::connection_reset) {
      return;
    }
    auto entry = FindHandle(gone->handle);
    if (!entry || !entry->download) return;
    std::erase(entry->download->staying, gone->endpoint);
    // Others given may not be connected yet.
    if (!entry->download->staying.empty()) return;
    const lt::torrent_status status = entry->handle.status({});
    if (status.num_peers > 0 || status.is_finished || status.is_seeding) return;
    entry->download->Fail(entry->download, Errc::kPeersGone);
    return;
  }
  if (auto* dropped = lt::alert_cast<lt::alerts_dropped_alert>(a)) {
    log::Warn(kModule, "swarm_alerts_dropped", {{"alerts", dropped->message()}});
    return;
  }
  if (auto* failed = lt::alert_cast<lt::hash_failed_alert>(a)) {
    std::lock_guard lock(mu);
    ++stats.hash_failures;
    log::Warn(kModule, "piece_hash_failed", {{"piece", static_cast<int>(failed->piece_index)}});
    return;
  }
  if (auto* ban = lt::alert_cast<lt::peer_ban_alert>(a)) {
    std::lock_guard lock(mu);
    ++stats.peers_banned;
    log::Warn(kModule, "peer_banned",
              {{"peer", ban->endpoint.address().to_string()},
               {"reason", "sent pieces that failed their hash"}});
    return;
  }
  if (auto* error = lt::alert_cast<lt::torrent_error_alert>(a)) {
    auto entry = FindHandle(error->handle);
    log::Warn(kModule, "torrent_error",
              {{"digest", entry ? entry->hex : std::string()}, {"error", error->error.message()}});
    if (entry && entry->download) entry->download->Fail(entry->download, error->error);
    return;
  }
  if (auto* file_error = lt::alert_cast<lt::file_error_alert>(a)) {
    auto entry = FindHandle(file_error->handle);
    log::Warn(kModule, "torrent_file_error",
              {{"digest", entry ? entry->hex : std::string()},
               {"error", file_error->error.message()}});
    if (entry && entry->download) {
      entry->download->Fail(entry->download, file_error->error);
    } else if (entry) {
      // A seed whose file went away or cannot be read: stop offering it.
      DropSeed(entry);
    }
    return;
  }
  if (auto* removed = lt::alert_cast<lt::torrent_removed_alert>(a)) {
    by_handle.erase(removed->handle);
    return;
  }
  if (auto* rejected = lt::alert_cast<lt::fastresume_rejected_alert>(a)) {
    auto entry = FindHandle(rejected->handle);
    log::Warn(kModule, "seed_rejected",
              {{"digest", entry ? entry->hex : std::string()},
               {"error", rejected->error.message()}});
    if (entry && entry->kind == Entry::Kind::kSeed) {
      // Its file is gone or changed size (evicted as it was loaded): the same
      // drop as a file error once seeding.
      DropSeed(entry);
    }
    return;
  }
}

void Swarm::Impl::DropSeed(const std::shared_ptr<Entry>& entry) {
  Remove(entry, {});
  std::lock_guard lock(mu);
  ++stats.seeds_dropped;
}

void Swarm::Impl::PumpReads(Entry& entry) {
  DownloadState& state = *entry.download;
  while (!state.finished_unread.empty() && state.reads_in_flight.load() < kMaxPiecesInMemory) {
    const int piece = state.finished_unread.front();
    state.finished_unread.pop_front();
    ++state.reads_in_flight;
    entry.handle.read_piece(lt::piece_index_t(piece));
  }
}

void Swarm::Impl::SetDeadlines(const std::string& hex, int first, int last) {
  auto it = by_hex.find(hex);
  if (it == by_hex.end() || !it->second->added || !it->second->download) return;
  it->second->deadlines_until = std::max(it->second->deadlines_until, last);
  for (int piece = first; piece < last; ++piece) {
    it->second->handle.piece_priority(lt::piece_index_t(piece), lt::top_priority);
    // Earlier pieces first: the readers need them in order.
    it->second->handle.set_piece_deadline(lt::piece_index_t(piece), 500 + 100 * (piece - first));
  }
}

void Swarm::Impl::ApplyPreference(Entry& entry, const std::vector<bool>& first) {
  if (!entry.download) return;
  const auto pieces = static_cast<std::size_t>(entry.pieces);
  if (first.empty()) {
    entry.handle.prioritize_pieces(Priorities(std::vector<bool>(pieces, false), entry.deadlines_until));
  } else if (first.size() == pieces) {
    entry.handle.prioritize_pieces(Priorities(first, entry.deadlines_until));
  }
}

void Swarm::Impl::Remove(std::shared_ptr<Entry> entry, lt::remove_flags_t flags) {
  if (entry->removed) return;  // twice (two file errors in one batch) would throw
  auto it = by_hex.find(entry->hex);
  if (it != by_hex.end() && it->second == entry) by_hex.erase(it);
  if (!entry->added) {
    entry->remove_when_added = true;
    entry->remove_flags = flags;
    // Keep it findable by its add alert.
    by_hex.emplace(entry->hex, entry);
    return;
  }
  if (entry->kind == Entry::Kind::kSeed) {
    std::lock_guard lock(mu);
    auto seed = seeds.find(entry->hex);
    if (seed != seeds.end() && seed->second == entry->handle) seeds.erase(seed);
    stats.seeds_loaded = seeds.size();
  }
  entry->removed = true;
  if (!entry->handle.is_valid()) {
    // libtorrent let go of it already (seen in the soak: a seed whose
    // fast-resume data was rejected as its file was evicted, after Unseed
    // had removed it); removing it again would throw.
    by_handle.erase(entry->handle);
    if (entry->download) {
      std::error_code ignored;
      std::filesystem::remove(options.scratch_dir / entry->hex, ignored);
    }
    return;
  }
  session->remove_torrent(entry->handle, flags);
}

void Swarm::Impl::DoSeed(const std::string& hex, std::string torrent, std::filesystem::path path) {
  if (auto it = by_hex.find(hex); it != by_hex.end()) {
    it->second->last_active = SteadyClock::now();
    return;  // seeding already, or downloading (it is seeded once committed)
  }
  lt::error_code ec;
  auto ti = std::make_shared<lt::torrent_info>(lt::span<const char>(torrent.data(),
                                                                    static_cast<long>(torrent.size())),
                                               ec, lt::from_span);
  if (ec) {
    log::Warn(kModule, "seed_invalid_torrent", {{"digest", hex}, {"error", ec.message()}});
    return;
  }
  auto entry = std::make_shared<Entry>();
  entry->hex = hex;
  entry->kind = Entry::Kind::kSeed;
  entry->piece_length = ti->piece_length();
  entry->size = ti->total_size();
  lt::add_torrent_params atp;
  atp.ti = ti;
  atp.save_path = path.parent_path().string();
  if (path.filename().string() != ti->files().file_name(lt::file_index_t(0))) {
    atp.renamed_files[lt::file_index_t(0)] = path.filename().string();
  }
  atp.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused);
  atp.flags |= lt::torrent_flags::seed_mode;
  atp.verified_pieces.resize(ti->num_pieces(), true);
  atp.userdata = lt::client_data_t(entry.get());
  by_hex.emplace(hex, entry);
  session->async_add_torrent(std::move(atp));
}

void Swarm::Impl::DoDownload(const std::string& hex, std::shared_ptr<lt::torrent_info> ti,
                             std::vector<net::ip::tcp::endpoint> peers,
                             std::shared_ptr<DownloadState> state) {
  if (by_hex.contains(hex)) {
    state->Fail(state, Errc::kBusy);
    return;
  }
  // A scratch file left by a crash would be checked and its pieces never
  // handed over: start clean.
  std::error_code ignored;
  std::filesystem::remove(options.scratch_dir / hex, ignored);
  auto entry = std::make_shared<Entry>();
  entry->hex = hex;
  entry->kind = Entry::Kind::kDownload;
  entry->download = std::move(state);
  entry->pieces = ti->num_pieces();
  entry->piece_length = ti->piece_length();
  entry->size = ti->total_size();
  lt::add_torrent_params atp;
  atp.ti = std::move(ti);
  atp.save_path = options.scratch_dir.string();
  atp.flags &= ~(lt::torrent_flags::auto_managed | lt::torrent_flags::paused);
  if (auto early = early_preferences.find(hex); early != early_preferences.end()) {
    if (early->second.first.size() == static_cast<std::size_t>(atp.ti->num_pieces())) {
      atp.piece_priorities = Priorities(early->second.first, 0);
    }
    early_preferences.erase(early);
  }
  for (const auto& peer : peers) atp.peers.emplace_back(peer.address(), peer.port());
  entry->download->staying = std::move(peers);
  atp.userdata = lt::client_data_t(entry.get());
  by_hex.emplace(hex, entry);
  {
    std::lock_guard lock(mu);
    ++stats.downloads_running;
  }
  session->async_add_torrent(std::move(atp));
}

void Swarm::Impl::Housekeeping() {
  const auto now = SteadyClock::now();
  std::erase_if(early_preferences,
                [now](const auto& kv) { return now - kv.second.second > std::chrono::seconds(30); });
  std::vector<std::shared_ptr<Entry>> idle;
  std::vector<lt::peer_info> peers;
  for (auto& [hex, entry] : by_hex) {
    if (!entry->added) continue;
    peers.clear();
    // Blocking query, answered by libtorrent's network thread; this is the
    // swarm's own thread, no client waits on it.
    try {
      entry->handle.get_peer_info(peers);
    } catch (const std::exception&) {
      continue;  // removed meanwhile
    }
    if (!peers.empty()) entry->last_active = now;
    if (entry->kind == Entry::Kind::kSeed && now - entry->last_active > options.seed_idle) {
      idle.push_back(entry);
    }
  }
  for (const auto& entry : idle) {
    log::Debug(kModule, "seed_unloaded", {{"digest", entry->hex}});
    Remove(entry, {});
  }
}

void Swarm::Seed(const store::Digest& digest, std::string torrent, std::filesystem::path path) {
  net::post(impl_->ioc, [impl = impl_.get(), hex = digest.Hex(), torrent = std::move(torrent),
                         path = std::move(path)]() mutable {
    impl->DoSeed(hex, std::move(torrent), std::move(path));
  });
}

void Swarm::Unseed(const store::Digest& digest) {
  const std::string hex = digest.Hex();
  {
    // Stop at once, from this thread: the file is unlinked when we return.
    std::lock_guard lock(impl_->mu);
    auto it = impl_->seeds.find(hex);
    if (it != impl_->seeds.end()) {
      impl_->session->remove_torrent(it->second);
      impl_->seeds.erase(it);
      impl_->stats.seeds_loaded = impl_->seeds.size();
    }
  }
  net::post(impl_->ioc, [impl = impl_.get(), hex] {
    auto it = impl->by_hex.find(hex);
    if (it == impl->by_hex.end() || it->second->kind != Entry::Kind::kSeed) return;
    auto entry = it->second;
    if (entry->added) {
      impl->by_hex.erase(it);  // removed above already
    } else {
      impl->Remove(entry, {});
    }
  });
}

bool Swarm::IsSeeding(const store::Digest& digest) const {
  std::lock_guard lock(impl_->mu);
  return impl_->seeds.contains(digest.Hex());
}

SwarmStats Swarm::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

void Swarm::AddPeers(const store::Digest& digest, std::vector<net::ip::tcp::endpoint> peers) {
  net::post(impl_->ioc, [impl = impl_.get(), hex = digest.Hex(), peers = std::move(peers)] {
    auto it = impl->by_hex.find(hex);
    if (it == impl->by_hex.end() || !it->second->added) return;
    for (const auto& peer : peers) {
      if (it->second->download) it->second->download->staying.push_back(peer);
      try {
        it->second->handle.connect_peer(lt::tcp::endpoint(peer.address(), peer.port()));
      } catch (const std::exception&) {
        // Queued or checking: its own peers list covers it.
      }
    }
  });
}

void Swarm::Prefer(const store::Digest& digest, std::vector<bool> first) {
  net::post(impl_->ioc, [impl = impl_.get(), hex = digest.Hex(), first = std::move(first)]() mutable {
    auto it = impl->by_hex.find(hex);
    if (it == impl->by_hex.end() || !it->second->added) {
      impl->early_preferences[hex] = {std::move(first), SteadyClock::now()};
      return;
    }
    impl->ApplyPreference(*it->second, first);
  });
}

net::awaitable<Result<void>> Swarm::Download(const store::Digest& digest, std::string torrent,
                                             std::vector<net::ip::tcp::endpoint> peers,
                                             PieceWriter write,
                                             std::chrono::milliseconds stall_timeout) {
  lt::error_code ec;
  auto ti = std::make_shared<lt::torrent_info>(
      lt::span<const char>(torrent.data(), static_cast<long>(torrent.size())), ec, lt::from_span);
  if (ec) co_return Fail(Errc::kInvalidTorrent);
  const int pieces = ti->num_pieces();
  const std::uint64_t piece_length = static_cast<std::uint64_t>(ti->piece_length());
  const std::string hex = digest.Hex();

  auto strand = net::make_strand(co_await net::this_coro::executor);
  auto state = std::make_shared<DownloadState>();
  state->strand = strand;
  Impl* impl = impl_.get();

  auto run = [impl, state, ti, hex, peers = std::move(peers), pieces, piece_length,
              write = std::move(write), stall_timeout]() mutable -> net::awaitable<Result<void>> {
    net::steady_timer wake(co_await net::this_coro::executor);
    state->wake = &wake;
    net::post(impl->ioc, [impl, hex, ti, peers = std::move(peers), state]() mutable {
      impl->DoDownload(hex, std::move(ti), std::move(peers), std::move(state));
    });
    std::vector<bool> written(static_cast<std::size_t>(pieces), false);
    int remaining = pieces;
    int frontier = 0;        // the first piece not yet written
    // The add alert gives the first window its deadlines.
    int deadlines_until = std::min(pieces, kDeadlineWindow);  // pieces below have a deadline
    auto advance_deadlines = [&] {
      while (frontier < pieces && written[static_cast<std::size_t>(frontier)]) ++frontier;
      const int until = std::min(pieces, frontier + kDeadlineWindow);
      if (until > deadlines_until) {
        const int from = std::max(frontier, deadlines_until);
        deadlines_until = until;
        net::post(impl->ioc, [impl, hex, from, until] { impl->SetDeadlines(hex, from, until); });
      }
    };
    auto last_progress = SteadyClock::now();
    ErrorCode failure;
    while (remaining > 0 && !failure) {
      std::deque<ReadyPiece> batch;
      {
        std::lock_guard lock(state->mu);
        batch.swap(state->ready);
        if (batch.empty() && state->failure) failure = state->failure;
      }
      if (failure) break;
      if (batch.empty()) {
        const auto idle = SteadyClock::now() - last_progress;
        if (idle >= stall_timeout) {
          failure = Errc::kStalled;
          break;
        }
        wake.expires_after(std::min<SteadyClock::duration>(stall_timeout - idle,
                                                           std::chrono::seconds(1)));
        ErrorCode ignored;
        co_await wake.async_wait(net::redirect_error(net::use_awaitable, ignored));
        continue;
      }
      for (ReadyPiece& piece : batch) {
        --state->reads_in_flight;
        if (piece.error) {
          failure = piece.error;
          break;
        }
        const auto index = static_cast<std::size_t>(piece.index);
        if (index >= written.size() || written[index]) continue;
        const std::span<const std::uint8_t> bytes(
            reinterpret_cast<const std::uint8_t*>(piece.buffer.get()),
            static_cast<std::size_t>(piece.size));
        auto result = co_await write(static_cast<std::uint64_t>(piece.index) * piece_length, bytes);
        if (!result) {
          failure = result.error();
          break;
        }
        written[index] = true;
        --remaining;
        last_progress = SteadyClock::now();
      }
      advance_deadlines();
      // Room for more pieces in memory.
      net::post(impl->ioc, [impl, hex] {
        auto it = impl->by_hex.find(hex);
        if (it != impl->by_hex.end() && it->second->download && it->second->added) {
          impl->PumpReads(*it->second);
        }
      });
    }
    // Done either way: drop the torrent and its scratch file, and wait until
    // the swarm thread has let go of `state`.
    if (!state->released) {
      DownloadState* raw = state.get();
      net::post(impl->ioc, [impl, hex, raw] {
        std::vector<std::shared_ptr<Entry>> holding;
        for (auto& [key, entry] : impl->by_hex) {
          if (entry->download.get() == raw) holding.push_back(entry);
        }
        for (auto& [handle, entry] : impl->by_handle) {
          if (entry->download.get() == raw) holding.push_back(entry);
        }
        for (auto& entry : holding) {
          if (!entry->download) continue;
          entry->download.reset();
          impl->Remove(entry, lt::session_handle::delete_files);
        }
        // The last touch of `raw` on this thread, with no copy of the
        // caller's strand left here: once the coroutine sees the flag it may
        // return, and its caller may destroy the io_context behind that
        // strand (a copy destroyed here after that would touch freed memory).
        raw->released = true;
      });
      while (!state->released) {
        wake.expires_after(std::chrono::milliseconds(20));
        ErrorCode ignored;
        co_await wake.async_wait(net::redirect_error(net::use_awaitable, ignored));
      }
    }
    state->wake = nullptr;
    {
      std::lock_guard lock(impl->mu);
      --impl->stats.downloads_running;
      ++(failure ? impl->stats.downloads_failed : impl->stats.downloads_done);
    }
    if (failure) {
      log::Warn(kModule, "swarm_download_failed",
                {{"digest", hex}, {"error", failure.message()},
                 {"pieces_missing", remaining}});
      co_return Fail(failure);
    }
    co_return Result<void>();
  };
  co_return co_await net::co_spawn(strand, std::move(run), net::use_awaitable);
}

}  // namespace hubcache::p2p
