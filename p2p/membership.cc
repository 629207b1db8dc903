#include "p2p/membership.h"

#include <openssl/evp.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "p2p/spawn.h"

namespace hubcache::p2p {
namespace {

constexpr auto kModule = log::Module::kP2p;
using SteadyClock = std::chrono::steady_clock;


std::optional<net::ip::tcp::endpoint> ParseEndpoint(const std::string& text) {
  std::string host, port;
  if (!SplitNodeAddress(text, host, port)) return std::nullopt;
  ErrorCode ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return net::ip::tcp::endpoint(address, static_cast<std::uint16_t>(std::stoi(port)));
}

bool IsClientUrl(std::string_view url) {
  if (url.size() > 300 || !(url.starts_with("http://") || url.starts_with("https://"))) return false;
  for (char c : url) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

Membership::Membership(net::any_io_executor executor, const ClusterOptions& options,
                       const ClusterClient& client, std::string self_torrent)
    : executor_(std::move(executor)),
      options_(options),
      client_(client),
      self_(options.listen),
      self_torrent_(std::move(self_torrent)) {
  for (const std::string& peer : options_.peers) {
    if (peer == self_) continue;
    members_[peer].from_list = true;
  }
}

void Membership::Start() {
  Spawn(executor_, HealthLoop(), "cluster_health");
  if (!options_.dns.empty()) Spawn(executor_, DnsLoop(), "cluster_dns");
}

void Membership::Stop() { stopped_ = true; }

void Membership::SetClientUrl(std::string url) {
  std::lock_guard lock(mu_);
  self_client_ = std::move(url);
}

std::string Membership::HealthBody() const {
  std::lock_guard lock(mu_);
  return nlohmann::json{{"node", self_}, {"torrent", self_torrent_}, {"client", self_client_}}
      .dump();
}

net::awaitable<void> Membership::HealthLoop() {
  net::steady_timer timer(executor_);
  while (!stopped_) {
    std::vector<std::string> due;
    {
      std::lock_guard lock(mu_);
      for (auto& [address, member] : members_) {
        if (member.checking) continue;
        member.checking = true;
        due.push_back(address);
      }
    }
    for (std::string& address : due) {
      Spawn(executor_, Check(this, std::move(address)), "cluster_health_check");
    }
    UpdateLiveness();
    timer.expires_after(options_.health_interval);
    ErrorCode ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

net::awaitable<void> Membership::Check(Membership* self, std::string address) {
  auto reply = co_await self->client_.Call(address, "GET", "/_cluster/v1/health", std::string(),
                                     self->options_.dead_after);
  std::string torrent;
  std::string client;
  std::string refused;
  bool ok = false;
  if (reply && reply->status == 200) {
    auto body = nlohmann::json::parse(reply->body, nullptr, /*allow_exceptions=*/false);
    if (body.is_object() && body.value("node", std::string()) == address &&
        body.contains("torrent") && body["torrent"].is_string() &&
        ParseEndpoint(body["torrent"].get<std::string>())) {
      torrent = body["torrent"].get<std::string>();
      ok = true;
      // Older nodes send none; anything but a plain http(s) URL is ignored.
      const std::string url = body.value("client", std::string());
      if (IsClientUrl(url)) client = url;
    } else {
      refused = "its health answer is not a hubcache node's (wrong address in cluster.peers?)";
    }
  } else if (reply && (reply->status == 401 || reply->status == 403)) {
    auto body = nlohmann::json::parse(reply->body, nullptr, false);
    refused = body.is_object() ? body.value("error", std::string("refused"))
                               : std::string("refused");
  }
  bool changed = false;
  {
    std::lock_guard lock(self->mu_);
    auto it = self->members_.find(address);
    if (it == self->members_.end()) co_return;  // left the DNS answer meanwhile
    Member& member = it->second;
    member.checking = false;
    if (ok) {
      member.last_ok = SteadyClock::now();
      member.torrent = torrent;
      member.client = client;
      if (!member.ever_ok || !member.alive) changed = true;
      member.ever_ok = true;
      member.alive = true;
    }
    if (refused != member.refused) {
      if (!refused.empty()) {
        log::Warn(kModule, "cluster_peer_refused_us",
                  {{"peer", address},
                   {"status", reply ? reply->status : 0u},
                   {"reason", refused},
                   {"hint", "check that every node has the same cluster.secret_file"}});
      } else {
        log::Info(kModule, "cluster_peer_accepts_us", {{"peer", address}});
      }
      member.refused = refused;
    }
  }
  if (changed) {
    log::Info(kModule, "cluster_member_up", {{"peer", address}, {"torrent", torrent}});
    ++self->generation_;
  }
}

void Membership::UpdateLiveness() {
  const auto now = SteadyClock::now();
  std::vector<std::string> down;
  {
    std::lock_guard lock(mu_);
    for (auto& [address, member] : members_) {
      if (member.alive && now - member.last_ok > options_.dead_after) {
        member.alive = false;
        down.push_back(address);
      }
    }
  }
  for (const std::string& address : down) {
    log::Warn(kModule, "cluster_member_down",
              {{"peer", address}, {"silent_ms", options_.dead_after.count()}});
  }
  if (!down.empty()) ++generation_;
}

net::awaitable<void> Membership::DnsLoop() {
  std::string host, port;
  if (!SplitNodeAddress(options_.dns, host, port)) co_return;
  net::steady_timer timer(executor_);
  net::ip::tcp::resolver resolver(executor_);
  while (!stopped_) {
    ErrorCode ec;
    auto results = co_await resolver.async_resolve(host, port,
                                                   net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      log::Warn(kModule, "cluster_dns_failed", {{"name", options_.dns}, {"error", ec.message()}});
    } else {
      std::vector<std::string> addresses;
      for (const auto& entry : results) {
        const auto& ep = entry.endpoint();
        addresses.push_back(ep.address().is_v6()
                                ? "[" + ep.address().to_string() + "]:" + std::to_string(ep.port())
                                : ep.address().to_string() + ":" + std::to_string(ep.port()));
      }
      Resolved(addresses);
    }
    timer.expires_after(options_.dns_interval);
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

void Membership::Resolved(const std::vector<std::string>& addresses) {
  bool changed = false;
  std::lock_guard lock(mu_);
  for (auto& [address, member] : members_) {
    const bool listed = std::find(addresses.begin(), addresses.end(), address) != addresses.end();
    if (member.from_dns && !listed) {
      member.from_dns = false;
      changed = changed || member.alive;
    }
  }
  std::erase_if(members_, [](const auto& kv) { return !kv.second.from_dns && !kv.second.from_list; });
  for (const std::string& address : addresses) {
    if (address == self_) continue;
    auto [it, added] = members_.try_emplace(address);
    it->second.from_dns = true;
    if (added) log::Info(kModule, "cluster_member_found", {{"peer", address}, {"via", "dns"}});
  }
  if (changed) ++generation_;
}

std::uint64_t RendezvousScore(const store::Digest& digest, const std::string& address) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, digest.bytes().data(), digest.bytes().size());
  EVP_DigestUpdate(ctx, address.data(), address.size());
  EVP_DigestFinal_ex(ctx, out, &size);
  EVP_MD_CTX_free(ctx);
  std::uint64_t score = 0;
  for (int i = 0; i < 8; ++i) score = (score << 8) | out[i];
  return score;
}

std::vector<bool> WaveShare(const store::Digest& digest, std::size_t pieces,
                            const std::vector<std::string>& wave, const std::string& self) {
  std::vector<std::uint64_t> keys;
  std::size_t self_index = wave.size();
  for (const std::string& node : wave) {
    if (node == self) self_index = keys.size();
    keys.push_back(RendezvousScore(digest, node));
  }
  if (self_index == wave.size() || wave.size() < 2) return {};
  // One SHA-256 per member, then a 64-bit mix per (piece, member): a 50 GB
  // blob of 3,200 pieces and a wave of 64 nodes costs microseconds, not a
  // hash each.
  auto mix = [](std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  std::vector<bool> mine(pieces, false);
  for (std::size_t piece = 0; piece < pieces; ++piece) {
    const std::uint64_t salt = (piece + 1) * 0x9e3779b97f4a7c15ULL;
    std::size_t best = 0;
    std::uint64_t best_score = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const std::uint64_t score = mix(keys[i] ^ salt);
      if (i == 0 || score > best_score || (score == best_score && wave[i] < wave[best])) {
        best = i;
        best_score = score;
      }
    }
    mine[piece] = best == self_index;
  }
  return mine;
}

std::vector<std::string> Membership::Ranked(const store::Digest& digest) const {
  std::vector<std::pair<std::uint64_t, std::string>> scored;
  scored.emplace_back(RendezvousScore(digest, self_), self_);
  {
    std::lock_guard lock(mu_);
    for (const auto& [address, member] : members_) {
      if (member.alive) scored.emplace_back(RendezvousScore(digest, address), address);
    }
  }
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> out;
  out.reserve(scored.size());
  for (auto& [score, address] : scored) out.push_back(std::move(address));
  return out;
}

std::vector<std::string> Membership::LiveOthers() const {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [address, member] : members_) {
    if (member.alive) out.push_back(address);
  }
  return out;
}

bool Membership::IsLive(const std::string& address) const {
  if (address == self_) return true;
  std::lock_guard lock(mu_);
  auto it = members_.find(address);
  return it != members_.end() && it->second.alive;
}

std::optional<net::ip::tcp::endpoint> Membership::TorrentEndpoint(
    const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = members_.find(address);
  if (it == members_.end() || !it->second.alive) return std::nullopt;
  return ParseEndpoint(it->second.torrent);
}

std::string Membership::AddressOfIp(const std::string& ip) const {
  std::lock_guard lock(mu_);
  for (const auto& [address, member] : members_) {
    auto ep = ParseEndpoint(member.torrent);
    if (ep && ep->address().to_string() == ip) return address;
  }
  return ip;
}

std::vector<MemberView> Membership::Snapshot() const {
  const auto now = SteadyClock::now();
  std::vector<MemberView> out;
  std::lock_guard lock(mu_);
  out.push_back(MemberView{.address = self_, .self = true, .alive = true,
                           .torrent = self_torrent_, .client = self_client_, .seen_ms_ago = 0,
                           .refused = {}});
  for (const auto& [address, member] : members_) {
    out.push_back(MemberView{
        .address = address,
        .self = false,
        .alive = member.alive,
        .torrent = member.torrent,
        .client = member.client,
        .seen_ms_ago = member.ever_ok
                           ? std::chrono::duration_cast<std::chrono::milliseconds>(now - member.last_ok)
                                 .count()
                           : -1,
        .refused = member.refused});
  }
  return out;
}

}  // namespace hubcache::p2p
