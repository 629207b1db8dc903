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
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace hubcache::store {
class BlobStore;
}

namespace hubcache::proxy {

// Where the bytes of a response came from, as the X-Cache header says.
enum class CacheStatus { kHit, kMiss, kCoalesced, kStale, kPass };
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

  // The whole exposition. `store` and `fetches_in_flight` give the gauges.
  std::string Render(store::BlobStore& store, std::size_t fetches_in_flight) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;  // GUARDED_BY(mu_)
  std::array<std::atomic<std::uint64_t>, 5> served_bytes_{};
  std::atomic<std::uint64_t> upstream_bytes_{0};
  std::atomic<std::uint64_t> coalesced_{0};
  std::atomic<std::uint64_t> grants_allowed_{0};
  std::atomic<std::uint64_t> grants_refused_{0};
};

}  // namespace hubcache::proxy
