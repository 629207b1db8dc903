#include "daemon/prefetch.h"

#include <fnmatch.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/asio.h"
#include "core/log.h"
#include "daemon/cli.h"
#include "daemon/cluster_command.h"
#include "daemon/human.h"
#include "daemon/progress.h"
#include "daemon/service.h"
#include "proxy/hub_client.h"
#include "proxy/hub_path.h"
#include "proxy/shaping.h"
#include "p2p/membership.h"

namespace hubcache::daemon {
namespace {

using proxy::BufferedResponse;
using proxy::ResponseHead;
using Json = nlohmann::json;

constexpr std::size_t kMaxTreePages = 100'000;
constexpr auto kTickInterval = std::chrono::milliseconds(250);

struct FileEntry {
  std::string path;
  std::uint64_t size = 0;
  std::optional<store::Digest> digest;  // from the tree: LFS sha256, or the git blob id
};

// Which files of a revision a node should hold (all when empty).
using FileFilter = std::function<bool(const FileEntry&)>;

// What became of one revision.
struct Outcome {
  std::string label;
  std::string commit;
  std::string error;  // the revision itself failed (no repo info, no tree)
  std::size_t files = 0;
  std::uint64_t bytes = 0;
  std::size_t cached = 0;   // there already
  std::size_t fetched = 0;  // downloaded now
  std::vector<std::pair<std::string, std::string>> failures;  // path, why
  bool ok() const { return error.empty() && failures.empty(); }
};

// Why an answer is not a 200, in the Hub's words when it gave them.
std::string ErrorText(const ResponseHead& head, std::string_view body) {
  std::string message = head.Header("x-error-message");
  if (message.empty()) {
    auto json = Json::parse(body, nullptr, false);
    if (json.is_object() && json.contains("error") && json["error"].is_string()) {
      message = json["error"].get<std::string>();
    }
  }
  return message.empty() ? fmt::format("HTTP {}", head.status)
                         : fmt::format("HTTP {}: {}", head.status, message);
}

// The path and query of an absolute URL (`Link` targets).
std::string PathOf(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const std::size_t slash = url.find('/', scheme + 3);
  return slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
}

// huggingface_hub's allow/ignore patterns: fnmatch without FNM_PATHNAME (`*`
// crosses `/`), and a pattern ending in `/` means everything below it.
bool Matches(const std::vector<std::string>& patterns, const std::string& path) {
  for (std::string pattern : patterns) {
    if (pattern.ends_with('/')) pattern += '*';
    if (::fnmatch(pattern.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

// Counts a download's bytes into the progress; keeps an error body short.
class CountingSink : public proxy::BodySink {
 public:
  CountingSink(ProgressSink& progress, int id) : progress_(progress), id_(id) {}
  net::awaitable<Result<void>> OnHead(const ResponseHead& head) override {
    head_ = head;
    co_return Result<void>();
  }
  net::awaitable<Result<void>> OnData(std::span<const std::uint8_t> data) override {
    if (head_.status != 200) {
      if (error_body_.size() < 4096) error_body_.append(reinterpret_cast<const char*>(data.data()), data.size());
      co_return Result<void>();
    }
    bytes_ += data.size();
    progress_.Add(id_, data.size());
    co_return Result<void>();
  }
  const ResponseHead& head() const { return head_; }
  std::uint64_t bytes() const { return bytes_; }
  const std::string& error_body() const { return error_body_; }

 private:
  ProgressSink& progress_;
  const int id_;
  ResponseHead head_;
  std::uint64_t bytes_ = 0;
  std::string error_body_;
};

class Prefetcher {
 public:
  Prefetcher(proxy::HubClient& client, std::string base, const PrefetchRequest& request,
             ProgressSink& progress, FileFilter wants = {})
      : client_(client),
        base_(std::move(base)),
        request_(request),
        progress_(progress),
        wants_(std::move(wants)) {}

  net::awaitable<Outcome> Run(store::RepoSpec target) {
    const std::string revision = target.revision.empty() ? "main" : target.revision;
    Outcome outcome;
    outcome.label = store::RepoLabel(target.repo) + "@" + revision;
    const std::string plural(store::RepoTypePlural(target.repo.type));
    const std::string api = "/api/" + plural + "/" + target.repo.name;
    const std::string files_base =
        "/" + std::string(store::RepoTypePrefix(target.repo.type)) + target.repo.name + "/resolve/";

    // 1. The repo info at the revision names the commit.
    // (GCC 12: no temporaries with destructors inside a co_await expression.)
    const std::string info_target = api + "/revision/" + proxy::PercentEncode(revision, false);
    auto info = co_await Call(http::verb::get, info_target);
    if (!info) {
      outcome.error = fmt::format("cannot reach {}: {}", base_, info.error().message());
      co_return outcome;
    }
    if (info->head.status != 200) {
      outcome.error = "repo info: " + ErrorText(info->head, info->body);
      co_return outcome;
    }
    auto json = Json::parse(info->body, nullptr, false);
    if (!json.is_object() || !json.contains("sha") || !json["sha"].is_string() ||
        !store::IsCommitHash(json["sha"].get<std::string>())) {
      outcome.error = "repo info has no commit (sha)";
      co_return outcome;
    }
    const std::string commit = json["sha"].get<std::string>();
    outcome.commit = commit;
    // 2. ... and at the commit (clients that pin a commit ask for that).
    if (revision != commit) {
      const std::string commit_target = api + "/revision/" + commit;
      auto at_commit = co_await Call(http::verb::get, commit_target);
      if (!at_commit || at_commit->head.status != 200) {
        outcome.error = "repo info at the commit: " +
                        (at_commit ? ErrorText(at_commit->head, at_commit->body)
                                   : at_commit.error().message());
        co_return outcome;
      }
    }
    // 2b. The repo's refs listing: offline, every branch and tag on a stored
    // commit then resolves, and one on a commit not stored gets the Hub's
    // RevisionNotFound (proxy/offline_refs.h).
    const std::string refs_target = api + "/refs";
    auto refs = co_await Call(http::verb::get, refs_target);
    if (!refs || refs->head.status != 200) {
      outcome.error = "refs listing: " + (refs ? ErrorText(refs->head, refs->body)
                                               : refs.error().message());
      co_return outcome;
    }
    // 3. The whole tree at the commit, every page.
    std::vector<FileEntry> all;
    std::string page = api + "/tree/" + commit + "?recursive=true&expand=false";
    for (std::size_t n = 0; !page.empty() && n < kMaxTreePages; ++n) {
      auto tree = co_await Call(http::verb::get, page);
      if (!tree || tree->head.status != 200) {
        outcome.error = "tree listing: " + (tree ? ErrorText(tree->head, tree->body)
                                                 : tree.error().message());
        co_return outcome;
      }
      auto entries = Json::parse(tree->body, nullptr, false);
      if (!entries.is_array()) {
        outcome.error = "tree listing is not a JSON array";
        co_return outcome;
      }
      for (const auto& e : entries) {
        if (!e.is_object() || e.value("type", "") != "file" || !e.contains("path") ||
            !e["path"].is_string() || !e.contains("size") || !e["size"].is_number_unsigned()) {
          continue;
        }
        FileEntry entry{.path = e["path"].get<std::string>(),
                        .size = e["size"].get<std::uint64_t>(),
                        .digest = std::nullopt};
        if (auto lfs = e.find("lfs"); lfs != e.end() && lfs->is_object()) {
          if (auto oid = lfs->find("oid"); oid != lfs->end() && oid->is_string()) {
            auto digest = store::Digest::Parse(store::DigestKind::kSha256, oid->get<std::string>());
            if (digest) entry.digest = *digest;
          }
        } else if (auto oid = e.find("oid"); oid != e.end() && oid->is_string()) {
          auto digest = store::Digest::Parse(store::DigestKind::kGitSha1, oid->get<std::string>());
          if (digest) entry.digest = *digest;
        }
        all.push_back(std::move(entry));
      }
      const std::string next = proxy::NextLinkUrl(tree->head.Header("link"));
      page = next.empty() ? std::string() : PathOf(next);
    }
    // 4. The ref, recorded by resolving one file at the revision.
    if (revision != commit && !all.empty()) {
      const std::string resolve_target = files_base + proxy::PercentEncode(revision, false) +
                                         "/" + proxy::PercentEncode(all.front().path, true);
      auto resolved = co_await Call(http::verb::head, resolve_target);
      if (!resolved || resolved->head.status != 200) {
        outcome.error = "resolving " + revision + ": " +
                        (resolved ? ErrorText(resolved->head, "") : resolved.error().message());
        co_return outcome;
      }
      const std::string now = resolved->head.Header("x-repo-commit");
      if (now != commit) {
        log::Warn(log::Module::kDaemon, "prefetch_revision_moved",
                  {{"repo", outcome.label}, {"prefetched", commit}, {"now", now}});
      }
    }
    // 5. The files.
    std::vector<FileEntry> selected;
    for (FileEntry& f : all) {
      if (!request_.include.empty() && !Matches(request_.include, f.path)) continue;
      if (Matches(request_.exclude, f.path)) continue;
      if (wants_ && !wants_(f)) continue;
      outcome.bytes += f.size;
      selected.push_back(std::move(f));
    }
    outcome.files = selected.size();
    progress_.StartTarget(outcome.label + " (" + commit.substr(0, 12) + ")", selected.size(),
                          outcome.bytes);
    // Run() and its workers share one strand (the caller's): no locks.
    auto strand = co_await net::this_coro::executor;
    net::steady_timer all_done(strand, net::steady_timer::time_point::max());
    std::size_t next = 0;
    std::size_t workers = std::max(1u, request_.jobs);
    std::size_t running = workers;
    for (std::size_t w = 0; w < workers; ++w) {
      net::co_spawn(
          strand,
          [&]() -> net::awaitable<void> {
            while (next < selected.size()) {
              const FileEntry& file = selected[next++];
              const std::string url_base = files_base + commit + "/";
              co_await FetchFile(url_base, file, outcome);
            }
          },
          [&](std::exception_ptr) {
            if (--running == 0) all_done.cancel();
          });
    }
    ErrorCode cancelled;
    co_await all_done.async_wait(net::redirect_error(net::use_awaitable, cancelled));
    progress_.EndTarget();
    co_return outcome;
  }

 private:
  net::awaitable<Result<BufferedResponse>> Call(http::verb method, std::string target) {
    proxy::OutRequest out;
    out.method = method;
    out.url = base_ + target;
    out.token = request_.token;
    out.headers.emplace_back("Accept-Encoding", "identity");
    co_return co_await client_.Fetch(std::move(out));
  }

  net::awaitable<void> FetchFile(std::string url_base, const FileEntry& file, Outcome& outcome) {
    const int id = progress_.StartFile(file.path, file.size);
    const std::string target = url_base + proxy::PercentEncode(file.path, true);
    auto fail = [&](std::string why) {
      outcome.failures.emplace_back(file.path, why);
      progress_.EndFile(id, false, why);
    };
    auto head = co_await Call(http::verb::head, target);
    if (!head) {
      fail(head.error().message());
      co_return;
    }
    if (head->head.status != 200) {
      fail(ErrorText(head->head, ""));
      co_return;
    }
    if (Stored(head->head)) {
      outcome.cached += 1;
      progress_.EndFile(id, true, "cached");
      co_return;
    }
    proxy::OutRequest out;
    out.url = base_ + target;
    out.token = request_.token;
    out.headers.emplace_back("Accept-Encoding", "identity");
    CountingSink sink(progress_, id);
    auto sent = co_await client_.Send(std::move(out), sink);
    if (sink.head().status != 0 && sink.head().status != 200) {
      fail(ErrorText(sink.head(), sink.error_body()));
    } else if (!sent) {
      fail(fmt::format("download broke off after {} of {} bytes: {}", sink.bytes(), file.size,
                       sent.error().message()));
    } else if (sink.bytes() != file.size) {
      fail(fmt::format("got {} bytes, the tree says {}", sink.bytes(), file.size));
    } else {
      // The body is complete once verified; hubcache may still be making it
      // durable. A HEAD answers after that, and says whether it was stored at
      // all (a full store serves downloads without keeping them).
      auto stored = co_await Call(http::verb::head, target);
      if (!stored) {
        fail(stored.error().message());
      } else if (!Stored(stored->head)) {
        fail(fmt::format("downloaded but not stored (X-Cache: {}); is the store full?",
                         stored->head.Header("x-cache")));
      } else {
        outcome.fetched += 1;
        progress_.EndFile(id, true, "fetched");
      }
    }
  }

  static bool Stored(const proxy::ResponseHead& head) {
    const std::string cache = head.Header("x-cache");
    return head.status == 200 && (cache.starts_with("HIT") || cache.starts_with("STALE"));
  }

  proxy::HubClient& client_;
  const std::string base_;
  const PrefetchRequest& request_;
  ProgressSink& progress_;
  const FileFilter wants_;
};

// Prints the summary; returns whether everything was prefetched.
bool Report(const std::vector<Outcome>& outcomes) {
  bool all_ok = true;
  for (const Outcome& o : outcomes) {
    all_ok = all_ok && o.ok();
    if (!o.error.empty()) {
      fmt::print("{}: FAILED: {}\n", o.label, o.error);
      continue;
    }
    fmt::print("{} (commit {}): {} files, {}: {} fetched, {} already cached{}\n", o.label,
               o.commit, o.files, HumanSize(o.bytes), o.fetched, o.cached,
               o.failures.empty() ? "" : fmt::format(", {} FAILED", o.failures.size()));
    for (const auto& [path, why] : o.failures) fmt::print("  FAILED {}: {}\n", path, why);
  }
  return all_ok;
}

}  // namespace

tl::expected<std::vector<store::RepoSpec>, std::string> ParseTargetList(
    std::string_view text, std::optional<store::RepoType> type) {
  std::vector<store::RepoSpec> out;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_number;
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
    if (line.empty()) continue;
    auto spec = store::ParseRepoSpec(line, type);
    if (!spec) return tl::unexpected(fmt::format("line {}: {}", line_number, spec.error()));
    out.push_back(std::move(*spec));
  }
  return out;
}

namespace {

// Runs `work` on a strand of `ioc` with `threads` threads until `done`
// (called when the work ends) stops the loop; `tick` redraws the progress a
// few times a second meanwhile.
void RunTicking(net::io_context& ioc, unsigned threads, const std::function<void()>& tick,
                const std::function<net::awaitable<void>()>& work,
                const std::function<void()>& done) {
  std::atomic<bool> finished{false};
  net::steady_timer ticker(ioc);
  std::function<void(ErrorCode)> again = [&](ErrorCode ec) {
    if (ec || finished) return;
    tick();
    ticker.expires_after(kTickInterval);
    ticker.async_wait(again);
  };
  again({});
  net::co_spawn(net::make_strand(ioc), work(), [&](std::exception_ptr) {
    finished = true;
    ticker.cancel();
    done();
  });
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
}

struct ClusterNode {
  std::string address;  // cluster address
  std::string client;   // its client endpoint
  bool alive = false;
  std::int64_t seen_ms_ago = -1;
  std::string refused;
};

// hubcache_upstream_bytes_total of a node's /metrics, or -1.
net::awaitable<double> UpstreamBytes(proxy::HubClient& client, std::string base) {
  proxy::OutRequest out;
  out.method = http::verb::get;
  out.url = base + "/metrics";
  auto reply = co_await client.Fetch(std::move(out));
  if (!reply || reply->head.status != 200) co_return -1;
  static constexpr std::string_view kName = "\nhubcache_upstream_bytes_total ";
  const std::size_t at = reply->body.find(kName);
  if (at == std::string::npos) co_return -1;
  co_return std::atof(reply->body.c_str() + at + kName.size());
}

int PrefetchCluster(const config::Config& config, const PrefetchRequest& request) {
  auto status_body = FetchClusterStatus(config.cluster);
  if (!status_body) {
    fmt::print(stderr, "hubcache: prefetch --cluster: {}\n", status_body.error());
    return config.cluster.listen.empty() ? kExitUsage : kExitFailure;
  }
  const Json status = Json::parse(*status_body, nullptr, false);
  std::vector<ClusterNode> members;
  for (const Json& m : status["members"]) {
    if (!m.is_object()) continue;
    members.push_back({.address = m.value("address", std::string()),
                       .client = m.value("client", std::string()),
                       .alive = m.value("alive", false),
                       .seen_ms_ago = m.value("seen_ms_ago", std::int64_t{-1}),
                       .refused = m.value("refused", std::string())});
  }
  // The nodes that prefetch: live, reachable for clients.
  std::vector<ClusterNode> nodes;
  std::vector<std::pair<std::string, std::string>> left_out;  // member, why
  for (const ClusterNode& m : members) {
    if (!m.refused.empty()) {
      left_out.emplace_back(m.address, "refuses this node: " + m.refused);
    } else if (!m.alive) {
      left_out.emplace_back(m.address, m.seen_ms_ago < 0
                                           ? std::string("down (never answered)")
                                           : fmt::format("down (last answered {} ago)",
                                                         HumanDuration(m.seen_ms_ago / 1000.0)));
    } else if (m.client.empty()) {
      left_out.emplace_back(m.address, "its client endpoint is unknown (an older hubcache?)");
    } else {
      nodes.push_back(m);
    }
  }
  if (nodes.empty()) {
    fmt::print(stderr, "hubcache: prefetch --cluster: no live member to prefetch to\n");
    return kExitFailure;
  }
  const std::size_t replicas =
      request.replicas == 0 ? nodes.size() : std::min<std::size_t>(request.replicas, nodes.size());
  if (request.replicas > nodes.size()) {
    fmt::print(stderr, "hubcache: --replicas {}: only {} live members; each file goes to all\n",
               request.replicas, nodes.size());
  }

  const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  EventLoop ioc(static_cast<int>(threads));
  std::vector<std::unique_ptr<proxy::HubClient>> clients;
  for (const ClusterNode& node : nodes) {
    proxy::UpstreamOptions options = config.upstream;
    options.offline = false;
    options.url = node.client;
    // Nodes reach each other directly, never through the Hub's proxy.
    options.proxy.clear();
    auto client = proxy::HubClient::Create(options);
    if (!client) {
      fmt::print(stderr, "hubcache: cannot set up a client for {}: {}\n", node.client,
                 client.error().message());
      return kExitFailure;
    }
    clients.push_back(std::move(*client));
  }
  std::vector<std::string> names;
  for (const ClusterNode& node : nodes) names.push_back(node.address);
  NodesProgress progress(stderr, ::isatty(STDERR_FILENO) != 0, names);
  fmt::print(stderr, "prefetch to {} of {} members{}\n", nodes.size(), members.size(),
             request.replicas == 0 ? std::string()
                                   : fmt::format(", {} replicas of each file", replicas));

  // Node i holds a file when it is among the first `replicas` live nodes in
  // the file's rendezvous order (every node, without --replicas).
  std::vector<std::unique_ptr<Prefetcher>> prefetchers;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    FileFilter wants;
    if (replicas < nodes.size()) {
      wants = [&nodes, replicas, i](const FileEntry& file) {
        if (!file.digest) return true;  // no digest in the listing: everywhere
        const std::uint64_t mine = p2p::RendezvousScore(*file.digest, nodes[i].address);
        std::size_t above = 0;
        for (std::size_t j = 0; j < nodes.size(); ++j) {
          if (j == i) continue;
          const std::uint64_t theirs = p2p::RendezvousScore(*file.digest, nodes[j].address);
          if (theirs > mine || (theirs == mine && nodes[j].address < nodes[i].address)) ++above;
        }
        return above < replicas;
      };
    }
    prefetchers.push_back(std::make_unique<Prefetcher>(*clients[i], nodes[i].client, request,
                                                       progress.node(i), std::move(wants)));
  }

  std::vector<std::vector<Outcome>> outcomes(nodes.size());
  std::vector<double> hub_before(nodes.size(), -1);
  std::vector<double> hub_after(nodes.size(), -1);
  RunTicking(
      ioc, threads, [&progress] { progress.Tick(); },
      [&]() -> net::awaitable<void> {
        for (std::size_t i = 0; i < nodes.size(); ++i) {
          hub_before[i] = co_await UpstreamBytes(*clients[i], nodes[i].client);
        }
        // Every node at once: the cluster turns the misses into one fetch.
        auto strand = co_await net::this_coro::executor;
        net::steady_timer all_done(strand, net::steady_timer::time_point::max());
        std::size_t running = nodes.size();
        for (std::size_t i = 0; i < nodes.size(); ++i) {
          net::co_spawn(
              strand,
              [&, i]() -> net::awaitable<void> {
                for (const store::RepoSpec& target : request.targets) {
                  outcomes[i].push_back(co_await prefetchers[i]->Run(target));
                }
              },
              [&](std::exception_ptr) {
                if (--running == 0) all_done.cancel();
              });
        }
        ErrorCode cancelled;
        co_await all_done.async_wait(net::redirect_error(net::use_awaitable, cancelled));
        for (std::size_t i = 0; i < nodes.size(); ++i) {
          hub_after[i] = co_await UpstreamBytes(*clients[i], nodes[i].client);
        }
      },
      [&] {
        for (auto& client : clients) client->pool().Clear();
        ioc.stop();
      });
  // Suspended work refers to the clients: destroy it first.
  ioc.Shutdown();
  progress.Finish();

  // The summary: per revision, which nodes hold every file, which do not.
  bool all_ok = left_out.empty();
  for (std::size_t t = 0; t < request.targets.size(); ++t) {
    std::string label;
    std::string commit;
    for (std::size_t i = 0; i < nodes.size() && label.empty(); ++i) {
      if (t < outcomes[i].size()) {
        label = outcomes[i][t].label;
        commit = outcomes[i][t].commit;
      }
    }
    fmt::print("{}{}:\n", label, commit.empty() ? "" : " (commit " + commit + ")");
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (t >= outcomes[i].size()) {
        all_ok = false;
        fmt::print("  {}: FAILED: not run\n", nodes[i].address);
        continue;
      }
      const Outcome& o = outcomes[i][t];
      all_ok = all_ok && o.ok();
      if (!o.error.empty()) {
        fmt::print("  {}: FAILED: {}\n", nodes[i].address, o.error);
        continue;
      }
      fmt::print("  {}: {} {} files, {} ({} fetched, {} already cached){}\n", nodes[i].address,
                 o.failures.empty() ? "holds all" : "holds " + std::to_string(o.files - o.failures.size()) + " of",
                 o.files, HumanSize(o.bytes), o.fetched, o.cached,
                 o.failures.empty() ? "" : fmt::format(", {} FAILED", o.failures.size()));
      for (const auto& [path, why] : o.failures) fmt::print("    FAILED {}: {}\n", path, why);
    }
  }
  for (const auto& [member, why] : left_out) fmt::print("  {}: holds nothing: {}\n", member, why);
  double from_hub = 0;
  bool known = true;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (hub_before[i] < 0 || hub_after[i] < 0) known = false;
    from_hub += hub_after[i] - hub_before[i];
  }
  if (known) {
    fmt::print("from the Hub: {} in all\n", HumanSize(static_cast<std::uint64_t>(std::max(0.0, from_hub))));
  }
  return all_ok ? kExitOk : kExitFailure;
}

}  // namespace

int Prefetch(const config::Loaded& loaded, const PrefetchRequest& request) {
  const config::Config& config = loaded.config;
  if (request.cluster || request.replicas > 0) {
    log::Options log_options = config.log;
    log_options.level = std::max(log_options.level, log::Level::kWarn);
    log::Configure(log_options);
    std::signal(SIGPIPE, SIG_IGN);
    return PrefetchCluster(config, request);
  }
  // The private service's per-request lines would drown the progress.
  log::Options log_options = config.log;
  log_options.level = std::max(log_options.level, log::Level::kWarn);
  log::Configure(log_options);
  std::signal(SIGPIPE, SIG_IGN);

  std::string base = request.endpoint;
  while (base.ends_with('/')) base.pop_back();
  // Without an endpoint: the store (destroyed last), the event loop, a
  // private service (destroyed before the loop).
  config::Config local = config;
  local.server.listen = {"127.0.0.1:0"};
  local.server.public_url.clear();
  std::optional<Service::Store> store;
  if (base.empty()) {
    auto opened = Service::OpenStore(local);
    if (!opened) {
      fmt::print(stderr, "hubcache: {}{}\n", opened.error().message,
                 opened.error().event == "cache_dir_locked"
                     ? "; or prefetch through it with --endpoint http://ITS-ADDRESS"
                     : "");
      return kExitFailure;
    }
    store = std::move(*opened);
  }
  const unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  EventLoop ioc(static_cast<int>(threads));
  std::unique_ptr<Service> service;
  proxy::UpstreamOptions client_options = config.upstream;
  client_options.offline = false;
  if (base.empty()) {
    auto created = Service::Create(local, *store, ioc, threads);
    if (!created) {
      fmt::print(stderr, "hubcache: {}\n", created.error().message);
      return kExitFailure;
    }
    service = std::move(*created);
    service->server().Start();
    service->router().SetReady(true);
    base = fmt::format("http://127.0.0.1:{}", service->server().endpoints().front().port());
    client_options.no_proxy = "127.0.0.1";
  } else if (!base.starts_with("http://") && !base.starts_with("https://")) {
    fmt::print(stderr, "hubcache: --endpoint {}: expected an http:// or https:// URL\n", base);
    return kExitUsage;
  }
  client_options.url = base;
  auto client = proxy::HubClient::Create(client_options);
  if (!client) {
    fmt::print(stderr, "hubcache: cannot set up a client for {}: {}\n", base,
               client.error().message());
    return kExitFailure;
  }

  Progress progress(stderr, ::isatty(STDERR_FILENO) != 0);
  Prefetcher prefetcher(**client, base, request, progress);
  std::vector<Outcome> outcomes;
  RunTicking(
      ioc, threads, [&progress] { progress.Tick(); },
      [&]() -> net::awaitable<void> {
        for (const store::RepoSpec& target : request.targets) {
          outcomes.push_back(co_await prefetcher.Run(target));
        }
      },
      [&] {
        (*client)->pool().Clear();
        if (service) {
          service->server().Shutdown(std::chrono::seconds(5), [&ioc] { ioc.stop(); });
        } else {
          ioc.stop();
        }
      });
  if (service) service->JoinBlocking();
  // Suspended work refers to the service and the client: destroy it first.
  ioc.Shutdown();
  return Report(outcomes) ? kExitOk : kExitFailure;
}

}  // namespace hubcache::daemon
