#include "daemon/status_page.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/log.h"
#include "core/offload.h"
#include "daemon/status_assets.h"
#include "daemon/version.h"
#include "p2p/cluster.h"
#include "proxy/hub_path.h"
#include "store/catalog.h"

namespace hubcache::daemon {
namespace {

using Json = nlohmann::json;
constexpr log::Module kModule = log::Module::kDaemon;
constexpr std::size_t kRing = 361;  // an hour of 10 s samples, and the one before
constexpr std::string_view kPrefix = "/_hubcache";

net::awaitable<void> Send(proxy::Exchange& exchange, unsigned status, std::string_view type,
                          std::string body) {
  proxy::StringResponse response(static_cast<http::status>(status), exchange.request().version());
  response.set(http::field::content_type, proxy::ToBeast(type));
  response.set(http::field::cache_control, "no-store");
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Referrer-Policy", "no-referrer");
  // Only the page's own files run or load: no inline script, nothing from
  // elsewhere (a repo name that reached the page as markup could not run).
  response.set("Content-Security-Policy",
               "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  response.body() = std::move(body);
  co_await exchange.Send(std::move(response));
}

net::awaitable<void> SendJson(proxy::Exchange& exchange, unsigned status, const Json& body) {
  co_await Send(exchange, status, "application/json",
                body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

net::awaitable<void> SendError(proxy::Exchange& exchange, unsigned status, std::string_view message) {
  const Json body{{"error", std::string(message)}};
  co_await SendJson(exchange, status, body);
}

bool SameToken(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// A query parameter's decoded value ("" when absent or badly encoded).
std::string Query(std::string_view target, std::string_view name) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    const std::string_view raw = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    std::string plus(raw);
    std::replace(plus.begin(), plus.end(), '+', ' ');
    return proxy::PercentDecode(plus).value_or(std::string());
  }
  return {};
}

Json Counts(const std::array<std::uint64_t, 6>& values) {
  Json out = Json::object();
  for (std::size_t i = 0; i < values.size(); ++i) {
    out[std::string(proxy::CacheStatusName(static_cast<proxy::CacheStatus>(i)))] = values[i];
  }
  return out;
}

}  // namespace

StatusPage::StatusPage(Parts parts, net::any_io_executor io)
    : parts_(std::move(parts)),
      io_(io),
      started_unix_(core::UnixSeconds()),
      timer_(io) {}

void StatusPage::Start(std::chrono::milliseconds interval) {
  TakeSample();
  net::co_spawn(io_, SampleLoop(interval), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error(kModule, "status_sampler_crashed", {{"error", ex.what()}});
    }
  });
}

void StatusPage::Stop() {
  net::post(io_, [this] {
    stopped_ = true;
    timer_.cancel();
  });
}

net::awaitable<void> StatusPage::SampleLoop(std::chrono::milliseconds interval) {
  while (!stopped_) {
    timer_.expires_after(interval);
    ErrorCode ec;
    co_await timer_.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (stopped_) break;
    TakeSample();
  }
}

void StatusPage::TakeSample() {
  Sample sample{.time = core::UnixSeconds(), .totals = parts_.metrics.totals()};
  std::lock_guard lock(mu_);
  samples_.push_back(sample);
  while (samples_.size() > kRing) samples_.pop_front();
}

bool StatusPage::IsPublic(const store::RepoId& repo) const {
  auto access = parts_.store.index().GetAccess(repo);
  return access && *access && (*access)->visibility == store::Visibility::kPublic;
}

std::string StatusPage::Overview(bool admin) {
  (void)admin;
  const proxy::Metrics::Totals now = parts_.metrics.totals();
  Json history = Json::array();
  {
    std::lock_guard lock(mu_);
    // The samples, and now: the chart moves before the next sample is due.
    std::vector<Sample> points(samples_.begin(), samples_.end());
    points.push_back(Sample{.time = core::UnixSeconds(), .totals = now});
    const Sample* prev = nullptr;
    for (const Sample& s : points) {
      if (prev != nullptr) {
        std::uint64_t served = 0, answers = 0;
        for (std::size_t i = 0; i < s.totals.bytes.size(); ++i) {
          served += s.totals.bytes[i] - prev->totals.bytes[i];
          answers += s.totals.answers[i] - prev->totals.answers[i];
        }
        const auto hit = static_cast<std::size_t>(proxy::CacheStatus::kHit);
        const auto stale = static_cast<std::size_t>(proxy::CacheStatus::kStale);
        history.push_back(
            {{"time", s.time},
             {"served_bytes", served},
             {"upstream_bytes", s.totals.upstream_bytes - prev->totals.upstream_bytes},
             {"answers", answers},
             {"hits", (s.totals.answers[hit] - prev->totals.answers[hit]) +
                          (s.totals.answers[stale] - prev->totals.answers[stale])}});
      }
      prev = &s;
    }
  }
  const proxy::FileResolver::OfflineReason why = parts_.files.offline_reason();
  const bool offline = parts_.files.offline();
  auto blobs = parts_.store.BlobCount();
  Json store{{"cache_dir", parts_.store.root().string()},
             {"used_bytes", parts_.store.used_bytes()},
             {"reserved_bytes", parts_.store.reserved_bytes()},
             {"max_bytes", parts_.store_options.max_bytes},
             {"min_free_percent", parts_.store_options.min_free_percent},
             {"blobs", blobs ? *blobs : 0},
             {"evictions", parts_.store.evictions()},
             {"quarantined", parts_.store.quarantined()}};
  return Json{{"version", Version()},
              {"started_at", started_unix_},
              {"uptime_seconds",
               std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                started_)
                   .count()},
              {"upstream",
               {{"url", parts_.upstream_url},
                {"configured_offline", parts_.files.configured_offline()},
                {"reachable", !offline},
                {"problem", offline ? why.message : std::string()}}},
              {"store", store},
              {"answers", Counts(now.answers)},
              {"served_bytes", Counts(now.bytes)},
              {"upstream_bytes", now.upstream_bytes},
              {"downloads", parts_.fetches.running()},
              {"cluster", parts_.cluster != nullptr},
              {"history", history}}
      .dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string StatusPage::Downloads(bool admin) const {
  Json list = Json::array();
  std::uint64_t hidden = 0;
  for (const proxy::FetchCoordinator::Progress& p : parts_.fetches.Snapshot()) {
    const bool shown = admin || IsPublic(p.repo);
    if (!shown) {
      ++hidden;
      continue;
    }
    list.push_back({{"repo", store::RepoLabel(p.repo)},
                    {"path", p.path},
                    {"digest", p.digest.Hex()},
                    {"size", p.size},
                    {"bytes", p.bytes},
                    {"seconds", p.seconds},
                    {"rate", p.seconds > 0 ? static_cast<double>(p.bytes) / p.seconds : 0.0},
                    {"source", p.source != proxy::CacheStatus::kPeer ? std::string("hub")
                               : p.via.empty()                     ? std::string("swarm")
                                                                   : p.via},
                    {"readers", p.readers}});
  }
  return Json{{"downloads", list}, {"restricted_hidden", hidden}}.dump(
      -1, ' ', false, Json::error_handler_t::replace);
}

net::awaitable<void> StatusPage::Handle(proxy::Exchange& exchange) {
  const proxy::Request& request = exchange.request();
  const std::string_view target = proxy::ToStd(request.target());
  const std::string_view path = target.substr(0, target.find('?'));
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    co_await SendError(exchange, 405, "the status page is read-only");
    co_return;
  }
  if (path == kPrefix) {
    proxy::StringResponse response(http::status::found, request.version());
    response.set(http::field::location, "/_hubcache/");
    response.set(http::field::cache_control, "no-store");
    co_await exchange.Send(std::move(response));
    co_return;
  }
  if (!path.starts_with(kPrefix) || path[kPrefix.size()] != '/') {
    co_await SendError(exchange, 404, "not part of the status page");
    co_return;
  }
  const std::string_view rest = path.substr(kPrefix.size() + 1);

  // Who asks: the admin token shows restricted repos; a wrong one is refused
  // (the page asks for it again).
  bool admin = false;
  const std::string_view authorization = proxy::ToStd(request[http::field::authorization]);
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    const std::string_view given =
        authorization.starts_with(kBearer) ? authorization.substr(kBearer.size()) : std::string_view();
    if (parts_.admin_token.empty() || !SameToken(given, parts_.admin_token.Reveal())) {
      co_await SendError(exchange, 401, "this is not the admin token (status.admin_token_file)");
      co_return;
    }
    admin = true;
  }

  if (!rest.starts_with("api/")) {
    const std::string name = rest.empty() ? std::string("index.html") : std::string(rest);
    for (const StatusAsset& asset : StatusAssets()) {
      if (asset.name != name) continue;
      const std::string_view type = name.ends_with(".html") ? "text/html; charset=utf-8"
                                    : name.ends_with(".css") ? "text/css; charset=utf-8"
                                                             : "text/javascript; charset=utf-8";
      co_await Send(exchange, 200, type, std::string(asset.content));
      co_return;
    }
    co_await SendError(exchange, 404, "no such file on the status page");
    co_return;
  }
  const std::string_view api = rest.substr(4);
  if (api == "overview") {
    co_await Send(exchange, 200, "application/json", Overview(admin));
  } else if (api == "downloads") {
    co_await Send(exchange, 200, "application/json", Downloads(admin));
  } else if (api == "repos") {
    // A scan of the whole index: off the event loop.
    auto summaries = co_await core::Offload(
        parts_.blocking, [this] { return store::Summarize(parts_.store.index()); });
    if (!summaries) {
      co_await SendError(exchange, 500, "cannot read the index: " + summaries.error().message());
      co_return;
    }
    Json repos = Json::array();
    std::uint64_t hidden = 0;
    for (const store::RepoSummary& summary : *summaries) {
      const bool is_public = IsPublic(summary.repo);
      if (!admin && !is_public) {
        ++hidden;
        continue;
      }
      std::uint64_t files = 0, bytes = 0, cached_files = 0, cached_bytes = 0;
      Json commits = Json::array();
      for (const store::CommitSummary& c : summary.commits) {
        commits.push_back({{"commit", c.commit},
                           {"files", c.files},
                           {"bytes", c.bytes},
                           {"cached_files", c.cached_files},
                           {"cached_bytes", c.cached_bytes}});
        files = std::max(files, c.files);
        bytes = std::max(bytes, c.bytes);
        cached_files += c.cached_files;
        cached_bytes += c.cached_bytes;
      }
      Json refs = Json::object();
      for (const auto& [name, commit] : summary.refs) refs[name] = commit;
      repos.push_back({{"repo", store::RepoLabel(summary.repo)},
                       {"type", store::RepoTypeName(summary.repo.type)},
                       {"name", summary.repo.name},
                       {"public", is_public},
                       {"refs", refs},
                       {"commits", commits},
                       {"cached_files", cached_files},
                       {"cached_bytes", cached_bytes},
                       {"last_access", summary.last_access},
                       {"pins", summary.pins}});
    }
    const Json body{{"repos", std::move(repos)}, {"restricted_hidden", hidden}};
    co_await SendJson(exchange, 200, body);
  } else if (api == "repo") {
    const std::string label = Query(target, "repo");
    auto spec = store::ParseRepoSpec(label);
    if (!spec) {
      co_await SendError(exchange, 400, "repo: " + spec.error());
      co_return;
    }
    if (!admin && !IsPublic(spec->repo)) {
      // The same answer whether it is cached or not: a name is not confirmed.
      co_await SendError(exchange, 404, "no such public repo in the cache");
      co_return;
    }
    std::string revision = Query(target, "rev");
    if (revision.empty()) revision = "main";
    auto commit = store::ResolveLocally(parts_.store.index(), spec->repo, revision);
    if (!commit || !*commit) {
      co_await SendError(exchange, 404, "this revision is not in the cache");
      co_return;
    }
    const store::RepoId repo = spec->repo;
    const std::string at = **commit;
    auto files = co_await core::Offload(parts_.blocking, [this, &repo, &at] {
      Json list = Json::array();
      auto scanned = parts_.store.index().ForEachFile(
          repo, at, [&](std::string_view file, const store::FileRecord& record) {
            if (!record.exists || !record.digest) return true;
            auto blob = parts_.store.GetBlob(*record.digest);
            list.push_back({{"path", file},
                            {"size", record.size},
                            {"lfs", record.lfs},
                            {"cached", blob && blob->has_value()}});
            return list.size() < 100'000;
          });
      return scanned ? Result<Json>(std::move(list)) : Result<Json>(Fail(scanned.error()));
    });
    if (!files) {
      co_await SendError(exchange, 500, "cannot read the index: " + files.error().message());
      co_return;
    }
    const Json body{{"repo", store::RepoLabel(repo)},
                    {"revision", revision},
                    {"commit", at},
                    {"files", std::move(*files)}};
    co_await SendJson(exchange, 200, body);
  } else if (api == "cluster") {
    if (parts_.cluster == nullptr) {
      const Json off{{"enabled", false}};
      co_await SendJson(exchange, 200, off);
      co_return;
    }
    Json status = Json::parse(parts_.cluster->StatusJson(), nullptr, false);
    if (status.is_discarded()) status = Json::object();
    status["enabled"] = true;
    co_await SendJson(exchange, 200, status);
  } else {
    co_await SendError(exchange, 404, "no such status endpoint");
  }
  log::Debug(kModule, "status_request", {{"req", exchange.id()}, {"admin", admin}});
}

}  // namespace hubcache::daemon
