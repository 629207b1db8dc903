// Metrics: the counters /metrics exposes in the Prometheus text format.
//
// Counters are atomics bumped on the request path; the per-route request
// counts sit behind a mutex whose critical section is a map increment.
// Render() reads the store's gauges (bytes, blob count) at scrape time.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace hubcache::store {
class BlobStore;
}

namespace hubcache::proxy {

// Where the bytes of a response came from, as the X-Cache header says:
// kMiss from the Hub (started by this request), kPeer from another node of
// the cluster, kPass from the Hub without being stored.
enum class CacheStatus { kHit, kMiss, kCoalesced, kStale, kPass, kPeer };
// The metrics label ("HIT", ..., "PASS") and the X-Cache header value (the
// same, except that pass-through answers say MISS).
std::string_view CacheStatusName(CacheStatus status);
std::string CacheStatusHeader(CacheStatus status);

class Metrics {
 public:
  void CountRequest(std::string_view route, unsigned status);
  void CountServed(CacheStatus status, std::uint64_t bytes);
  void CountUpstreamBytes(std::uint64_t bytes) { upstream_bytes_ += bytes; }
  void CountCoalesced() { coalesced_ += 1; }
  void CountGrantCheck(bool allowed) { (allowed ? grants_allowed_ : grants_refused_) += 1; }
  // A blob source's attempt ("hub", "peer"; result "ok", "unavailable",
  // "failed") and the bytes it wrote into the store.
  void CountSourceFetch(std::string_view source, std::string_view result);
  void CountSourceBytes(std::string_view source, std::uint64_t bytes);

  // Answers served from the start, by X-Cache kind (indexed by CacheStatus),
  // and the bytes taken from the Hub: the status page's hit ratio and chart.
  struct Totals {
    std::array<std::uint64_t, 6> answers{};
    std::array<std::uint64_t, 6> bytes{};
    std::uint64_t upstream_bytes = 0;
  };
  Totals totals() const;

  // The whole exposition. `store` and `fetches_in_flight` give the gauges.
  std::string Render(store::BlobStore& store, std::size_t fetches_in_flight) const;

  // More exposition text appended by Render() (the cluster's metrics, which
  // proxy/ does not know). Set before the server starts.
  void SetExtra(std::function<std::string()> extra) { extra_ = std::move(extra); }

 private:
  std::function<std::string()> extra_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;  // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::string>, std::uint64_t> source_fetches_;  // GUARDED_BY(mu_)
  std::map<std::string, std::uint64_t, std::less<>> source_bytes_;  // GUARDED_BY(mu_)
  std::array<std::atomic<std::uint64_t>, 6> served_bytes_{};
  std::array<std::atomic<std::uint64_t>, 6> served_answers_{};
  std::atomic<std::uint64_t> upstream_bytes_{0};
  std::atomic<std::uint64_t> coalesced_{0};
  std::atomic<std::uint64_t> grants_allowed_{0};
  std::atomic<std::uint64_t> grants_refused_{0};
};

}  // namespace hubcache::proxy
