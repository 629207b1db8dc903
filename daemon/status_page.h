// StatusPage: the operators' page at /_hubcache/ (DESIGN.md "Observability",
// README "Status page"): what the cache holds, what it is downloading, how
// the cluster shares. One HTML file, one stylesheet and one script, embedded
// in the binary (daemon/status/, no build step, nothing from elsewhere), and
// the JSON they poll:
//
//   GET /_hubcache/                 the page (status.css, status.js beside it)
//   GET /_hubcache/api/overview     version, uptime, upstream and whether it
//                                   answers, store use against its limits,
//                                   answers and bytes by X-Cache, and a ring
//                                   of 10 s samples over the last hour
//   GET /_hubcache/api/downloads    fetches in progress: repo, file, size,
//                                   bytes so far, rate, readers, and the
//                                   source: "hub", "swarm" (the nodes that
//                                   hold it) or "leader" (streamed from the
//                                   node fetching it for the cluster)
//   GET /_hubcache/api/repos        cached repos: size, revisions, pins
//   GET /_hubcache/api/repo?repo=LABEL&rev=REV   a repo's files at a revision
//   GET /_hubcache/api/cluster      members, liveness, traffic per peer
//
// Read-only: nothing here changes the cache. Restricted repos (any repo the
// Hub has not shown to an anonymous request) appear by name, with their
// files and downloads, only to a request carrying the admin token
// (status.admin_token_file) as `Authorization: Bearer`; others see how many
// there are. A wrong admin token is a 401. No token or grant is ever shown.
//
// Thread safety: Handle() runs on many strands at once; the sample ring has
// a mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "core/asio.h"
#include "core/secret.h"
#include "proxy/exchange.h"
#include "proxy/fetch.h"
#include "proxy/file_resolver.h"
#include "proxy/metrics.h"
#include "store/blob_store.h"
#include "store/options.h"

namespace hubcache::p2p {
class Cluster;
}

namespace hubcache::daemon {

class StatusPage final : public proxy::Handler {
 public:
  struct Parts {
    store::BlobStore& store;
    proxy::FetchCoordinator& fetches;
    const proxy::Metrics& metrics;
    const proxy::FileResolver& files;
    const p2p::Cluster* cluster;  // null when this node is alone
    std::string upstream_url;
    store::Options store_options;
    Secret admin_token;  // empty: restricted details are never shown
    net::any_io_executor blocking;
  };
  StatusPage(Parts parts, net::any_io_executor io);

  // Samples the counters every `interval` (the chart's ring keeps an hour).
  void Start(std::chrono::milliseconds interval = std::chrono::seconds(10));
  void Stop();

  net::awaitable<void> Handle(proxy::Exchange& exchange) override;

 private:
  struct Sample {
    std::int64_t time = 0;  // unix seconds
    proxy::Metrics::Totals totals;
  };
  net::awaitable<void> SampleLoop(std::chrono::milliseconds interval);
  void TakeSample();

  std::string Overview(bool admin);
  std::string Downloads(bool admin) const;
  bool IsPublic(const store::RepoId& repo) const;

  Parts parts_;
  net::any_io_executor io_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  const std::int64_t started_unix_;
  net::steady_timer timer_;
  bool stopped_ = false;
  mutable std::mutex mu_;
  std::deque<Sample> samples_;  // GUARDED_BY(mu_)
};

}  // namespace hubcache::daemon
