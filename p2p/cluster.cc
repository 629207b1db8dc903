#include "p2p/cluster.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/errc.h"
#include "core/log.h"
#include "p2p/errc.h"
#include "p2p/spawn.h"

namespace hubcache::p2p {
namespace {

constexpr auto kModule = log::Module::kP2p;
using SteadyClock = std::chrono::steady_clock;
using Json = nlohmann::json;

constexpr std::string_view kPrefix = "/_cluster/v1/";
constexpr auto kMaxSkew = std::chrono::seconds(60);
constexpr auto kControlTimeout = std::chrono::milliseconds(3000);
// A leader answers a cold fetch once the Hub answered it (resolve, then the
// first response head of the download).
constexpr auto kLeaderFetchTimeout = std::chrono::seconds(30);
// Digests per announcement request (70 bytes each, under the server's 1 MiB).
constexpr std::size_t kAnnounceBatch = 5000;
// Every holding is announced again this often, so that a leader that
// restarted unnoticed relearns it.
constexpr auto kFullAnnounceEvery = std::chrono::seconds(60);
// Background hashing of blobs that predate the cluster: at most this many
// bytes per second, so serving keeps the disk and the CPU.
constexpr std::uint64_t kBackfillBytesPerSecond = 256ull << 20;
// Holders asked for the .torrent (each also starts seeding).
constexpr std::size_t kMaxHoldersAsked = 16;
// How long a holder waits for its seed to load before it answers with the
// .torrent (or says it cannot seed).
constexpr auto kSeedWait = std::chrono::seconds(1);

ClusterResponse JsonReply(unsigned status, Json body) {
  return ClusterResponse{.status = status, .body = body.dump()};
}

ClusterResponse Error(unsigned status, std::string_view message) {
  return JsonReply(status, Json{{"error", message}});
}

std::string EndpointText(const net::ip::tcp::endpoint& ep) {
  return ep.address().is_v6() ? "[" + ep.address().to_string() + "]:" + std::to_string(ep.port())
                              : ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

Result<std::unique_ptr<Cluster>> Cluster::Create(const ClusterOptions& options,
                                                 store::BlobStore& store,
                                                 net::any_io_executor executor) {
  auto key = ClusterKey::FromFile(options.secret_file);
  if (!key) return Fail(key.error());
  std::string host, port;
  if (!SplitNodeAddress(options.listen, host, port)) return Fail(core::Errc::kInvalidArgument);
  const std::uint16_t torrent_port = options.torrent_port != 0
                                         ? static_cast<std::uint16_t>(options.torrent_port)
                                         : static_cast<std::uint16_t>(std::stoi(port) + 1);
  auto swarm = Swarm::Create(SwarmOptions{.listen_host = host,
                                          .port = torrent_port,
                                          .upload_rate_limit = options.upload_rate_limit,
                                          .scratch_dir = store.root() / "p2p" / "scratch",
                                          .seed_idle = options.seed_idle});
  if (!swarm) return Fail(swarm.error());
  std::unique_ptr<Cluster> cluster(
      new Cluster(options, store, std::move(executor), std::move(*key), std::move(*swarm)));
  store.AddObserver(cluster.get());
  store.AddHashTap([inbox = cluster->inbox_](const store::Digest& digest,
                                             std::uint64_t size) -> std::unique_ptr<store::HashTap> {
    {
      std::lock_guard lock(inbox->mu);
      if (size == 0 || !inbox->open) return nullptr;
    }
    return std::make_unique<PieceHasher>(size, [inbox, hex = digest.Hex()](PieceHashes hashes) {
      std::lock_guard lock(inbox->mu);
      if (inbox->open) inbox->pending[hex] = std::move(hashes);
    });
  });
  return cluster;
}

Cluster::Cluster(const ClusterOptions& options, store::BlobStore& store,
                 net::any_io_executor executor, ClusterKey key, std::unique_ptr<Swarm> swarm)
    : options_(options),
      store_(store),
      executor_(std::move(executor)),
      key_(std::move(key)),
      client_(key_, options.listen),
      swarm_(std::move(swarm)),
      torrents_(store.root() / "p2p" / "torrents") {
  std::string host, port;
  SplitNodeAddress(options.listen, host, port);
  const std::string torrent_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  membership_ = std::make_unique<Membership>(
      executor_, options_, client_, torrent_host + ":" + std::to_string(swarm_->port()));
}

Cluster::~Cluster() {
  Stop();
  store_.RemoveObserver(this);
  std::lock_guard lock(inbox_->mu);
  inbox_->open = false;
  inbox_->pending.clear();
}

void Cluster::Start() {
  membership_->Start();
  Spawn(executor_, AnnounceLoop(), "cluster_announce");
  backfill_ = std::thread([this] { Backfill(); });
  log::Info(kModule, "cluster_started",
            {{"node", options_.listen},
             {"torrent_port", swarm_->port()},
             {"peers", options_.peers.size()},
             {"dns", options_.dns}});
}

void Cluster::Stop() {
  if (stopped_.exchange(true)) return;
  membership_->Stop();
  if (backfill_.joinable()) backfill_.join();
}

// ---------------------------------------------------------------- store events

void Cluster::OnCommitted(const store::CommittedBlob& blob) {
  const std::string hex = blob.digest.Hex();
  std::optional<PieceHashes> hashes;
  {
    std::lock_guard lock(inbox_->mu);
    auto it = inbox_->pending.find(hex);
    if (it != inbox_->pending.end()) {
      hashes = std::move(it->second);
      inbox_->pending.erase(it);
    }
  }
  if (!hashes) return;  // committed before the cluster started: the backfill hashes it
  auto torrent = MakeTorrent(blob.digest, blob.size, *hashes);
  if (!torrent) {
    log::Warn(kModule, "torrent_failed", {{"digest", hex}, {"error", torrent.error().message()}});
    return;
  }
  if (auto put = torrents_.Put(blob.digest, *torrent); !put) {
    log::Warn(kModule, "torrent_save_failed", {{"digest", hex}, {"error", put.error().message()}});
    return;
  }
  std::lock_guard lock(mu_);
  held_[hex] = blob.size;
  to_withdraw_.erase(hex);
  to_announce_.insert(hex);
}

void Cluster::OnRemoving(const store::Digest& digest) {
  // Stop seeding before the file goes; the .torrent goes with the blob.
  swarm_->Unseed(digest);
  torrents_.Remove(digest);
  const std::string hex = digest.Hex();
  std::lock_guard lock(mu_);
  if (held_.erase(hex) > 0) {
    to_announce_.erase(hex);
    to_withdraw_.insert(hex);
  }
}

void Cluster::Backfill() {
  // Blobs in the store without a .torrent: hash them, oldest first order is
  // not needed; digest order is what the index gives.
  std::vector<std::pair<store::Digest, std::uint64_t>> missing;
  auto listed = store_.index().ForEachBlob([&](const store::Digest& digest,
                                               const store::BlobRecord& record) {
    if (stopped_) return false;
    if (record.size == 0) return true;
    if (torrents_.Has(digest)) {
      std::lock_guard lock(mu_);
      held_[digest.Hex()] = record.size;
      to_announce_.insert(digest.Hex());
    } else {
      missing.emplace_back(digest, record.size);
    }
    return true;
  });
  if (!listed) {
    log::Warn(kModule, "backfill_list_failed", {{"error", listed.error().message()}});
    return;
  }
  {
    std::lock_guard lock(mu_);
    backfill_pending_ = missing.size();
  }
  if (!missing.empty()) log::Info(kModule, "backfill_started", {{"blobs", missing.size()}});
  std::atomic<bool>* stop = &stopped_;
  for (const auto& [digest, size] : missing) {
    if (stopped_) return;
    const auto started = SteadyClock::now();
    auto hashes = HashBlobFile(store_.BlobPath(digest), size, stop);
    if (hashes) {
      auto torrent = MakeTorrent(digest, size, *hashes);
      if (torrent && torrents_.Put(digest, *torrent)) {
        // Still in the store? (It may have been evicted while we hashed.)
        auto record = store_.GetBlob(digest);
        std::lock_guard lock(mu_);
        if (record && *record) {
          held_[digest.Hex()] = size;
          to_announce_.insert(digest.Hex());
        }
      }
    } else if (!stopped_) {
      log::Debug(kModule, "backfill_skipped",
                 {{"digest", digest.Hex()}, {"error", hashes.error().message()}});
    }
    {
      std::lock_guard lock(mu_);
      --backfill_pending_;
    }
    // Keep to the rate: sleep off what hashing this blob took too little of.
    const auto budget = std::chrono::microseconds(size * 1'000'000 / kBackfillBytesPerSecond);
    const auto spent = SteadyClock::now() - started;
    auto rest = budget - std::chrono::duration_cast<std::chrono::microseconds>(spent);
    while (rest.count() > 0 && !stopped_) {
      const auto step = std::min<std::chrono::microseconds>(rest, std::chrono::milliseconds(100));
      std::this_thread::sleep_for(step);
      rest -= step;
    }
  }
  if (!missing.empty()) log::Info(kModule, "backfill_done", {{"blobs", missing.size()}});
}

// ---------------------------------------------------------------- announcements

net::awaitable<void> Cluster::AnnounceLoop() {
  net::steady_timer timer(executor_);
  std::uint64_t seen_generation = ~0ull;
  auto last_full = SteadyClock::now();
  while (!stopped_) {
    const std::uint64_t generation = membership_->generation();
    const bool full = generation != seen_generation || SteadyClock::now() - last_full > kFullAnnounceEvery;
    if (full) {
      seen_generation = generation;
      last_full = SteadyClock::now();
    }
    co_await Announce(full);
    timer.expires_after(std::chrono::milliseconds(500));
    ErrorCode ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

net::awaitable<void> Cluster::Announce(bool full) {
  std::vector<std::string> hold;
  std::vector<std::string> drop;
  {
    std::lock_guard lock(mu_);
    if (full) {
      for (const auto& [hex, size] : held_) hold.push_back(hex);
    } else {
      hold.assign(to_announce_.begin(), to_announce_.end());
    }
    drop.assign(to_withdraw_.begin(), to_withdraw_.end());
    to_announce_.clear();
    to_withdraw_.clear();
    announcing_ = hold.size() + drop.size();
  }
  struct Done {
    std::atomic<std::uint64_t>& counter;
    ~Done() { counter = 0; }
  } done{announcing_};
  if (hold.empty() && drop.empty() && !full) co_return;
  // Group by leader.
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> by_leader;
  if (full) {
    // Every live member hears from us, even with nothing to hold, so that a
    // leader drops what we no longer have.
    for (const std::string& member : membership_->LiveOthers()) by_leader[member];
    by_leader[self()];
  }
  for (const std::string& hex : hold) {
    auto digest = store::Digest::ParseHex(hex);
    if (!digest) continue;
    by_leader[membership_->Ranked(*digest).front()].first.push_back(hex);
  }
  for (const std::string& hex : drop) {
    auto digest = store::Digest::ParseHex(hex);
    if (!digest) continue;
    by_leader[membership_->Ranked(*digest).front()].second.push_back(hex);
  }
  std::vector<std::string> failed_hold;
  for (auto& [leader, lists] : by_leader) {
    auto& [holds, drops] = lists;
    if (leader == self()) {
      if (full) directory_.ForgetNode(self());
      for (const auto& hex : holds) directory_.Hold(hex, self());
      for (const auto& hex : drops) directory_.Drop(hex, self());
      continue;
    }
    bool first = true;
    for (std::size_t i = 0; i < holds.size() || first; i += kAnnounceBatch) {
      const auto end = std::min(holds.size(), i + kAnnounceBatch);
      Json body{{"digests", std::vector<std::string>(holds.begin() + static_cast<long>(std::min(i, holds.size())),
                                                     holds.begin() + static_cast<long>(end))},
                {"full", full && first}};
      first = false;
      auto reply = co_await client_.Call(leader, "POST", "/_cluster/v1/hold", body.dump(),
                                         kControlTimeout);
      if (!reply || reply->status != 200) {
        // Retried with the next full announcement (or sooner, below).
        failed_hold.insert(failed_hold.end(), holds.begin() + static_cast<long>(std::min(i, holds.size())),
                           holds.begin() + static_cast<long>(end));
      }
    }
    if (!drops.empty()) {
      Json body{{"digests", drops}};
      co_await client_.Call(leader, "POST", "/_cluster/v1/drop", body.dump(), kControlTimeout);
    }
  }
  if (!failed_hold.empty()) {
    std::lock_guard lock(mu_);
    for (auto& hex : failed_hold) {
      if (held_.contains(hex)) to_announce_.insert(std::move(hex));
    }
  }
}

// ---------------------------------------------------------------- API

void Cluster::Refused(const ClusterRequest& request, AuthVerdict verdict) {
  ++requests_refused_;
  // One line per remote and reason per minute: a flood cannot flood the log.
  const std::string key = request.remote + "|" + std::string(AuthVerdictText(verdict));
  {
    std::lock_guard lock(mu_);
    auto& last = refusal_logged_[key];
    const auto now = SteadyClock::now();
    if (last.time_since_epoch().count() != 0 && now - last < std::chrono::minutes(1)) return;
    last = now;
    if (refusal_logged_.size() > 10'000) refusal_logged_.clear();
  }
  log::Warn(kModule, "cluster_request_refused",
            {{"remote", request.remote},
             {"node", request.auth.node.substr(0, 100)},
             {"target", request.target.substr(0, 200)},
             {"reason", AuthVerdictText(verdict)}});
}

std::string Cluster::Authenticate(const ClusterRequest& request) {
  const AuthVerdict verdict = key_.Verify(request.method, request.target, request.body,
                                          request.auth, core::UnixSeconds(), kMaxSkew);
  if (verdict == AuthVerdict::kOk) return {};
  Refused(request, verdict);
  return std::string(AuthVerdictText(verdict));
}

net::awaitable<ClusterResponse> Cluster::Handle(const ClusterRequest& request) {
  const AuthVerdict verdict = key_.Verify(request.method, request.target, request.body,
                                          request.auth, core::UnixSeconds(), kMaxSkew);
  if (verdict != AuthVerdict::kOk) {
    Refused(request, verdict);
    co_return Error(401, std::string("hubcache cluster: ") + std::string(AuthVerdictText(verdict)));
  }
  co_return co_await Route(request);
}

net::awaitable<ClusterResponse> Cluster::Route(const ClusterRequest& request) {
  std::string_view target = request.target;
  if (!target.starts_with(kPrefix)) co_return Error(404, "no such cluster route");
  target.remove_prefix(kPrefix.size());
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  if (get && target == "health") {
    co_return ClusterResponse{.body = membership_->HealthBody()};
  }
  if (get && target == "status") co_return ClusterResponse{.body = StatusJson()};
  if (post && (target == "hold" || target == "drop")) {
    auto holdings = ParseHoldings(request.body);
    if (!holdings) {
      co_return Error(400, "expected {\"digests\": [lower-case hex digests]}");
    }
    const std::string& node = request.auth.node;
    if (target == "hold") {
      if (holdings->full) directory_.ForgetNode(node);
      for (const auto& hex : holdings->digests) directory_.Hold(hex, node);
    } else {
      for (const auto& hex : holdings->digests) directory_.Drop(hex, node);
    }
    co_return JsonReply(200, Json{{"ok", true}, {"count", holdings->digests.size()}});
  }
  if (get && target.starts_with("locate/")) {
    const std::string hex(target.substr(7));
    if (!IsHexDigest(hex)) co_return Error(400, "expected a lower-case hex digest");
    co_return Locate(hex, request.auth.node);
  }
  if (get && target.starts_with("torrent/")) {
    const std::string hex(target.substr(8));
    if (!IsHexDigest(hex)) co_return Error(400, "expected a lower-case hex digest");
    co_return co_await TorrentOf(hex);
  }
  if (!get && !post) co_return Error(405, "method not allowed on the cluster API");
  co_return Error(404, "no such cluster route");
}

ClusterResponse Cluster::Locate(const std::string& hex, const std::string& requester) {
  Directory::Found found = directory_.Find(hex);
  Json holders = Json::array();
  Json fetching = Json::array();
  for (const std::string& node : found.holders) {
    if (node == requester || !membership_->IsLive(node)) continue;
    holders.push_back(node);
  }
  for (const std::string& node : found.fetching) {
    if (node == requester || !membership_->IsLive(node)) continue;
    fetching.push_back(node);
  }
  directory_.Fetching(hex, requester);
  return JsonReply(200, Json{{"holders", holders}, {"fetching", fetching}});
}

net::awaitable<ClusterResponse> Cluster::TorrentOf(const std::string& hex) {
  auto digest = store::Digest::ParseHex(hex);
  if (!digest) co_return Error(400, "expected a lower-case hex digest");
  {
    std::lock_guard lock(mu_);
    if (!held_.contains(hex)) co_return Error(404, "this node does not hold that blob");
  }
  // Small file reads; the .torrent of a 50 GB blob is 60 KB.
  auto torrent = torrents_.Get(*digest);
  if (!torrent) co_return Error(404, "this node has no .torrent for that blob");
  swarm_->Seed(*digest, *torrent, store_.BlobPath(*digest));
  // Answer once the seed is loaded: the asker connects right away, and a
  // connection that finds no torrent here is retried only a second later
  // (most of a small blob's transfer time, and time for eviction to take
  // the blob away meanwhile).
  net::steady_timer wait(co_await net::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + kSeedWait;
  while (!swarm_->IsSeeding(*digest) && std::chrono::steady_clock::now() < deadline) {
    wait.expires_after(std::chrono::milliseconds(5));
    ErrorCode ignored;
    co_await wait.async_wait(net::redirect_error(net::use_awaitable, ignored));
  }
  if (!swarm_->IsSeeding(*digest)) {
    co_return Error(503, "this node could not start seeding that blob");
  }
  co_return ClusterResponse{.content_type = "application/x-bittorrent", .body = std::move(*torrent)};
}

// ---------------------------------------------------------------- fetching

net::awaitable<Cluster::Located> Cluster::FindHolders(Cluster* self,
                                                    const store::Digest& digest) {
  Located out;
  const std::string hex = digest.Hex();
  const std::string leader = self->LeaderOf(digest);
  std::vector<std::string> holders;
  std::vector<std::string> fetching;
  if (leader == self->self()) {
    Directory::Found found = self->directory_.Find(hex);
    self->directory_.Fetching(hex, self->self());
    holders = std::move(found.holders);
    fetching = std::move(found.fetching);
  } else {
    auto reply = co_await self->client_.Call(leader, "GET", "/_cluster/v1/locate/" + hex,
                                             std::string(), kControlTimeout);
    if (!reply || reply->status != 200) {
      log::Warn(kModule, "locate_failed",
                {{"digest", hex}, {"leader", leader},
                 {"error", reply ? "HTTP " + std::to_string(reply->status) : reply.error().message()}});
      co_return out;
    }
    Json body = Json::parse(reply->body, nullptr, false);
    if (body.is_object()) {
      for (const char* key : {"holders", "fetching"}) {
        if (!body.contains(key) || !body[key].is_array()) continue;
        for (const Json& node : body[key]) {
          if (node.is_string()) {
            (std::string_view(key) == "holders" ? holders : fetching).push_back(node.get<std::string>());
          }
        }
      }
    }
  }
  out.ok = true;
  for (auto& node : holders) {
    if (node != self->self() && self->membership_->IsLive(node)) out.holders.push_back(std::move(node));
  }
  for (auto& node : fetching) {
    if (node != self->self() && self->membership_->IsLive(node)) out.fetching.push_back(std::move(node));
  }
  co_return out;
}

net::awaitable<void> Cluster::FollowSwarm(Cluster* self, store::Digest digest,
                                          std::shared_ptr<SwarmWatch> watch) {
  // Nodes that asked at the same moment did not see each other in their
  // first answer: ask again while the download runs, and hand newcomers
  // (holders, now seeding, and nodes fetching too) to libtorrent.
  net::steady_timer timer(self->executor_);
  const std::string hex = digest.Hex();
  while (!watch->done && !self->stopped_) {
    timer.expires_after(std::chrono::seconds(1));
    ErrorCode ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (watch->done || self->stopped_) break;
    Located found = co_await FindHolders(self, digest);
    if (!found.ok) continue;
    std::vector<net::ip::tcp::endpoint> fresh;
    for (const std::string& holder : found.holders) {
      if (watch->known.contains(holder)) continue;
      // Asking for its .torrent makes it load the seed.
      auto reply = co_await self->client_.Call(holder, "GET", "/_cluster/v1/torrent/" + hex,
                                               std::string(), kControlTimeout, 64 << 20);
      if (!reply || reply->status != 200 || reply->body != watch->torrent) continue;
      watch->known.insert(holder);
      if (auto ep = self->membership_->TorrentEndpoint(holder)) fresh.push_back(*ep);
    }
    for (const std::string& node : found.fetching) {
      if (!watch->known.insert(node).second) continue;
      if (auto ep = self->membership_->TorrentEndpoint(node)) fresh.push_back(*ep);
    }
    if (!fresh.empty() && !watch->done) self->swarm_->AddPeers(digest, std::move(fresh));
    // The wave: nodes fetching now (those that finished hold every piece).
    std::set<std::string> wave(found.fetching.begin(), found.fetching.end());
    wave.insert(self->self());
    if (wave != watch->wave && !watch->done) {
      watch->wave = std::move(wave);
      self->PreferShare(digest, *watch);
    }
  }
}

namespace {

// Writes one piece and counts its bytes once the store took them. A plain
// function, so its arguments live in the coroutine frame; `write` lives in
// the PieceWriter the swarm holds until the write completes.
net::awaitable<Result<void>> CountedWrite(const PieceWriter* write,
                                          std::atomic<std::uint64_t>* counter,
                                          std::uint64_t offset,
                                          std::span<const std::uint8_t> bytes) {
  Result<void> written = co_await (*write)(offset, bytes);
  if (written) *counter += bytes.size();
  co_return written;
}

}  // namespace

net::awaitable<Result<void>> Cluster::FetchAs(Cluster* self, store::Digest digest,
                                              std::uint64_t size, PieceWriter write) {
  co_return co_await self->FetchBody(digest, size, write);
}

net::awaitable<Result<void>> Cluster::FetchBody(const store::Digest& digest, std::uint64_t size,
                                                PieceWriter& write) {
  const std::string hex = digest.Hex();
  const std::vector<std::string> ranked = membership_->Ranked(digest);
  if (ranked.size() < 2 || size == 0) co_return Fail(Errc::kNoHolders);
  ++fetches_started_;
  // 1. Who holds it: the leader knows.
  Located found = co_await FindHolders(this, digest);
  if (!found.ok) {
    ++fetches_failed_;
    co_return Fail(Errc::kNoHolders);
  }
  std::vector<std::string> holders = std::move(found.holders);
  std::vector<std::string> fetching = std::move(found.fetching);
  if (holders.empty()) {
    ++fetches_no_holder_;
    co_return Fail(Errc::kNoHolders);
  }
  // 2. The .torrent, from the holders; asking each one also makes it seed.
  std::string torrent;
  std::vector<net::ip::tcp::endpoint> peers;
  if (holders.size() > kMaxHoldersAsked) holders.resize(kMaxHoldersAsked);
  for (const std::string& holder : holders) {
    auto reply = co_await client_.Call(holder, "GET", "/_cluster/v1/torrent/" + hex, std::string(),
                                       kControlTimeout, 64 << 20);
    if (!reply || reply->status != 200) continue;
    if (!CheckTorrentMatches(reply->body, digest, size)) {
      log::Warn(kModule, "peer_torrent_mismatch", {{"digest", hex}, {"peer", holder}});
      continue;
    }
    if (torrent.empty()) {
      torrent = std::move(reply->body);
    } else if (reply->body != torrent) {
      continue;  // not the canonical one: another rule version
    }
    if (auto ep = membership_->TorrentEndpoint(holder)) peers.push_back(*ep);
  }
  if (torrent.empty() || peers.empty()) {
    ++fetches_no_holder_;
    co_return Fail(Errc::kNoHolders);
  }
  for (const std::string& node : fetching) {
    if (auto ep = membership_->TorrentEndpoint(node)) peers.push_back(*ep);
  }
  std::string peer_list;
  for (const auto& ep : peers) peer_list += (peer_list.empty() ? "" : ",") + EndpointText(ep);
  log::Info(kModule, "swarm_download_started",
            {{"digest", hex}, {"bytes", size}, {"peers", peer_list}});
  // 3. The swarm, followed by a loop that finds the nodes that joined it.
  auto watch = std::make_shared<SwarmWatch>();
  watch->torrent = torrent;
  for (const std::string& node : holders) watch->known.insert(node);
  for (const std::string& node : fetching) watch->known.insert(node);
  watch->size = size;
  watch->wave.insert(fetching.begin(), fetching.end());
  watch->wave.insert(self());
  if (watch->wave.size() > 1) PreferShare(digest, *watch);
  Spawn(executor_, FollowSwarm(this, digest, watch), "cluster_follow_swarm");
  PieceWriter counted = [this, inner = std::move(write)](std::uint64_t offset,
                                                         std::span<const std::uint8_t> bytes) {
    return CountedWrite(&inner, &piece_bytes_, offset, bytes);
  };
  auto result = co_await swarm_->Download(digest, std::move(torrent), std::move(peers),
                                          std::move(counted), options_.stall_timeout);
  watch->done = true;
  if (!result) {
    ++fetches_failed_;
    co_return Fail(result.error());
  }
  ++fetches_done_;
  co_return Result<void>();
}

std::string Cluster::StreamSource(const store::Digest& digest, const std::string& node,
                                  const std::vector<std::string>& exclude) {
  const std::string hex = digest.Hex();
  const auto now = std::chrono::steady_clock::now();
  const auto fanout = static_cast<std::size_t>(std::max<std::uint32_t>(1, options_.stream_fanout));
  std::vector<std::string> nodes;
  std::size_t index = 0;
  {
    std::lock_guard lock(mu_);
    // A tree lasts as long as a fetch may: forget old ones as new ones come.
    std::erase_if(trees_, [now](const auto& kv) {
      return now - kv.second.started > std::chrono::minutes(30);
    });
    StreamTree& tree = trees_[hex];
    if (tree.nodes.empty()) tree.started = now;
    auto at = std::find(tree.nodes.begin(), tree.nodes.end(), node);
    if (at == tree.nodes.end()) {
      tree.nodes.push_back(node);
      at = tree.nodes.end() - 1;
    }
    index = static_cast<std::size_t>(at - tree.nodes.begin());
    nodes = tree.nodes;
  }
  // Node i streams from node (i - fanout) / fanout, the first `fanout` from
  // the leader; up the tree past the nodes it cannot use.
  auto parent = [fanout](std::size_t i) -> std::ptrdiff_t {
    return i < fanout ? -1 : static_cast<std::ptrdiff_t>((i - fanout) / fanout);
  };
  std::ptrdiff_t p = parent(index);
  while (p >= 0) {
    const std::string& candidate = nodes[static_cast<std::size_t>(p)];
    const bool excluded = std::find(exclude.begin(), exclude.end(), candidate) != exclude.end();
    if (!excluded && candidate != node && membership_->IsLive(candidate)) return candidate;
    p = parent(static_cast<std::size_t>(p));
  }
  return {};
}

namespace {

// Hands one run of a stream to the writer at the running offset.
net::awaitable<Result<void>> WriteRun(const PieceWriter* write, std::uint64_t* offset,
                                      std::atomic<std::uint64_t>* counter,
                                      std::span<const std::uint8_t> bytes) {
  Result<void> written = co_await (*write)(*offset, bytes);
  if (!written) co_return written;
  *offset += bytes.size();
  *counter += bytes.size();
  co_return Result<void>();
}

// Asks of leaders and streams that fail before the blob is whole move on
// this many times (a node of the tree died: go up the tree; the leader died:
// the next one); then this node goes to the Hub itself.
constexpr int kMaxLeaderAttempts = 6;
// A leader found unreachable is passed over this long (membership drops it
// after cluster.dead_after; this covers the nodes that have not yet).
constexpr auto kPassOverFor = std::chrono::seconds(30);

// What a sealed token is bound to: this blob, this file.
std::string ColdFetchContext(const ColdFetch& ask) {
  return ask.digest.Hex() + "\n" + ask.resolve_path;
}

}  // namespace

net::awaitable<Result<void>> Cluster::FetchFromLeaderAs(Cluster* self, ColdFetch ask,
                                                        Secret token, std::uint64_t from,
                                                        PieceWriter write) {
  const std::string hex = ask.digest.Hex();
  std::string leader = self->LeaderOf(ask.digest);
  if (leader == self->self() || from >= ask.size) co_return Fail(Errc::kNoHolders);
  std::uint64_t offset = from;
  const ClusterClient::ChunkSink sink = [&write, &offset,
                                         self](std::span<const std::uint8_t> bytes) {
    return WriteRun(&write, &offset, &self->leader_bytes_, bytes);
  };
  bool streaming = false;  // a leader named a source once
  ErrorCode failure;
  for (int attempt = 0; attempt < kMaxLeaderAttempts; ++attempt) {
    // 1. The leader starts the fetch (or joins its own, or has the blob),
    // answers once the Hub's answer passed its checks, and names the node
    // to stream from.
    auto reply = co_await self->client_.Call(leader, "POST", "/_cluster/v1/fetch",
                                             ColdFetchJson(ask), kLeaderFetchTimeout);
    if (!reply) {
      // Gone (or wedged): the next in rendezvous order leads the blob.
      log::Warn(kModule, "leader_unreachable",
                {{"digest", hex}, {"leader", leader}, {"error", reply.error().message()}});
      ++self->leader_failovers_;
      self->PassOver(leader);
      if (ask.skip_leaders.size() < kMaxExcluded) ask.skip_leaders.push_back(leader);
      failure = reply.error();
      leader = self->LeaderOf(ask.digest);
      if (leader == self->self()) {
        // This node leads it now: its caller fetches from the Hub from the
        // bytes it has, and the others stream from it.
        log::Info(kModule, "leader_taken_over", {{"digest", hex}, {"offset", offset}});
        ++self->leader_took_over_;
        co_return Fail(streaming || offset > from ? failure : ErrorCode(Errc::kNoHolders));
      }
      continue;
    }
    Result<ColdSource> source = Fail(Errc::kUnexpectedReply);
    if (reply->status == 200) source = ParseColdSource(reply->body);
    if (!source) {
      const Json refusal = Json::parse(reply->body, nullptr, false);
      const bool needs_token = reply->status == 403 && refusal.is_object() &&
                               refusal.value("needs_token", false);
      if (needs_token && !token.empty() && ask.sealed_token.empty()) {
        // A gated or private file: the client's token, for this file only.
        ask.sealed_token = self->key_.Seal(token, ColdFetchContext(ask));
        continue;
      }
      log::Warn(kModule, "leader_fetch_refused",
                {{"digest", hex}, {"leader", leader},
                 {"error", "HTTP " + std::to_string(reply->status) + " " + reply->body}});
      if (!streaming) {
        ++self->leader_refusals_;
        co_return Fail(Errc::kLeaderCannotFetch);
      }
      break;  // the Hub takes over from the bytes this node has
    }
    if (!streaming) ++self->leader_streams_;
    streaming = true;
    const std::string node = source->node.empty() ? leader : source->node;
    // 2. The bytes, as they arrive there.
    log::Info(kModule, "cold_stream_started",
              {{"digest", hex}, {"source", node}, {"leader", leader}, {"from", offset},
               {"bytes", ask.size}});
    const std::string target = "/_cluster/v1/blob/" + hex + "?from=" + std::to_string(offset);
    const std::uint64_t before = offset;
    auto streamed = co_await self->client_.Stream(node, target, ask.size - offset, sink,
                                                  kControlTimeout, self->options_.stall_timeout);
    self->CountStreamed(node, offset - before, 0);
    if (streamed) {
      ++self->leader_streams_done_;
      co_return Result<void>();
    }
    failure = streamed.error();
    log::Warn(kModule, "cold_stream_failed",
              {{"digest", hex}, {"source", node}, {"offset", offset}, {"error", failure.message()}});
    // A node of the tree died: the leader names one above it. The leader's
    // own stream failed: ask it again (it resumes, or it is gone and the
    // next leader takes over).
    if (node != leader && ask.exclude.size() < kMaxExcluded) ask.exclude.push_back(node);
  }
  ++self->leader_streams_failed_;
  co_return Fail(failure ? failure : ErrorCode(Errc::kLeaderCannotFetch));
}

std::string Cluster::LeaderOf(const store::Digest& digest) {
  const std::vector<std::string> ranked = membership_->Ranked(digest);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  std::erase_if(passed_over_, [now](const auto& kv) { return kv.second <= now; });
  for (const std::string& node : ranked) {
    if (node == self() || !passed_over_.contains(node)) return node;
  }
  return ranked.front();
}

void Cluster::PassOver(const std::string& node) {
  if (node == self()) return;
  std::lock_guard lock(mu_);
  passed_over_[node] = std::chrono::steady_clock::now() + kPassOverFor;
}

Result<Secret> Cluster::AcceptColdFetch(const ColdFetch& ask) {
  for (const std::string& node : ask.skip_leaders) PassOver(node);
  if (ask.sealed_token.empty()) return Secret();
  return key_.Open(ask.sealed_token, ColdFetchContext(ask));
}

void Cluster::PreferShare(const store::Digest& digest, const SwarmWatch& watch) {
  const std::vector<std::string> wave(watch.wave.begin(), watch.wave.end());
  swarm_->Prefer(digest, WaveShare(digest, PieceCount(watch.size), wave, self()));
}

// ---------------------------------------------------------------- status

ClusterStats Cluster::stats() const {
  ClusterStats out;
  out.fetches_started = fetches_started_.load();
  out.fetches_done = fetches_done_.load();
  out.fetches_no_holder = fetches_no_holder_.load();
  out.fetches_failed = fetches_failed_.load();
  out.piece_bytes = piece_bytes_.load();
  out.leader_streams = leader_streams_.load();
  out.leader_streams_done = leader_streams_done_.load();
  out.leader_streams_failed = leader_streams_failed_.load();
  out.leader_refusals = leader_refusals_.load();
  out.leader_took_over = leader_took_over_.load();
  out.leader_failovers = leader_failovers_.load();
  out.leader_bytes = leader_bytes_.load();
  out.requests_refused = requests_refused_.load();
  {
    std::lock_guard lock(mu_);
    out.torrents = held_.size();
    out.backfill_pending = backfill_pending_;
    out.announce_pending = to_announce_.size() + to_withdraw_.size() + announcing_.load();
  }
  out.members_alive = membership_->LiveOthers().size() + 1;
  out.directory_blobs = directory_.size();
  out.swarm = swarm_->stats();
  return out;
}

void Cluster::CountStreamed(const std::string& node, std::uint64_t in, std::uint64_t out) {
  if (in == 0 && out == 0) return;
  std::lock_guard lock(mu_);
  PeerTraffic& traffic = streamed_[node];
  traffic.bytes_in += in;
  traffic.bytes_out += out;
}

std::string Cluster::StatusJson() const {
  const ClusterStats s = stats();
  std::map<std::string, PeerTraffic> streamed;
  {
    std::lock_guard lock(mu_);
    streamed = streamed_;
  }
  Json members = Json::array();
  for (const MemberView& m : membership_->Snapshot()) {
    Json member{{"address", m.address},
                {"self", m.self},
                {"alive", m.alive},
                {"torrent", m.torrent},
                {"client", m.client},
                {"seen_ms_ago", m.seen_ms_ago}};
    if (!m.refused.empty()) member["refused"] = m.refused;
    // Both ways bytes move between nodes: BitTorrent (by the member's
    // torrent IP) and cold streams (by its cluster address).
    PeerTraffic traffic;
    if (auto it = streamed.find(m.address); it != streamed.end()) traffic = it->second;
    std::string ip, port;
    if (SplitNodeAddress(m.torrent, ip, port)) {
      if (auto it = s.swarm.peers.find(ip); it != s.swarm.peers.end()) {
        traffic.bytes_in += it->second.bytes_in;
        traffic.bytes_out += it->second.bytes_out;
      }
    }
    member["bytes_in"] = traffic.bytes_in;
    member["bytes_out"] = traffic.bytes_out;
    members.push_back(std::move(member));
  }
  return Json{{"node", options_.listen},
              {"torrent_port", swarm_->port()},
              {"members", members},
              {"leader_of", s.directory_blobs},
              {"torrents", s.torrents},
              {"backfill_pending", s.backfill_pending},
              {"seeds_loaded", s.swarm.seeds_loaded},
              {"swarm_downloads_running", s.swarm.downloads_running},
              {"swarm_downloads_done", s.swarm.downloads_done},
              {"swarm_downloads_failed", s.swarm.downloads_failed},
              {"fetches_no_holder", s.fetches_no_holder},
              {"hash_failures", s.swarm.hash_failures},
              {"peers_banned", s.swarm.peers_banned},
              {"bytes_from_peers", s.swarm.bytes_in},
              {"bytes_to_peers", s.swarm.bytes_out},
              {"requests_refused", s.requests_refused}}
      .dump();
}

}  // namespace hubcache::p2p
