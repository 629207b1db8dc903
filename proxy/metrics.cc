#include "proxy/metrics.h"

#include <fmt/format.h>

#include "store/blob_store.h"

namespace hubcache::proxy {

std::string_view CacheStatusName(CacheStatus status) {
  switch (status) {
    case CacheStatus::kHit:
      return "HIT";
    case CacheStatus::kMiss:
      return "MISS";
    case CacheStatus::kCoalesced:
      return "COALESCED";
    case CacheStatus::kStale:
      return "STALE";
    case CacheStatus::kPass:
      return "PASS";
    case CacheStatus::kPeer:
      return "PEER";
  }
  return "PASS";
}

std::string CacheStatusHeader(CacheStatus status) {
  return std::string(status == CacheStatus::kPass ? "MISS" : CacheStatusName(status));
}

void Metrics::CountRequest(std::string_view route, unsigned status) {
  std::lock_guard lock(mu_);
  requests_[{std::string(route), status}] += 1;
}

void Metrics::CountSourceFetch(std::string_view source, std::string_view result) {
  std::lock_guard lock(mu_);
  source_fetches_[{std::string(source), std::string(result)}] += 1;
}

void Metrics::CountSourceBytes(std::string_view source, std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  auto it = source_bytes_.find(source);
  if (it == source_bytes_.end()) it = source_bytes_.emplace(std::string(source), 0).first;
  it->second += bytes;
}

void Metrics::CountServed(CacheStatus status, std::uint64_t bytes) {
  served_bytes_[static_cast<std::size_t>(status)] += bytes;
  served_answers_[static_cast<std::size_t>(status)] += 1;
}

Metrics::Totals Metrics::totals() const {
  Totals t;
  for (std::size_t i = 0; i < t.bytes.size(); ++i) {
    t.bytes[i] = served_bytes_[i].load();
    t.answers[i] = served_answers_[i].load();
  }
  t.upstream_bytes = upstream_bytes_.load();
  return t;
}

std::string Metrics::Render(store::BlobStore& store, std::size_t fetches_in_flight) const {
  std::string out;
  auto counter = [&out](std::string_view name, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
  };
  auto gauge = [&out](std::string_view name, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
  };

  counter("hubcache_requests_total", "Requests answered, by route and status.");
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, n] : requests_) {
      out += fmt::format("hubcache_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first,
                         key.second, n);
    }
  }
  counter("hubcache_served_bytes_total", "Body bytes sent to clients, by X-Cache value.");
  for (std::size_t i = 0; i < served_bytes_.size(); ++i) {
    out += fmt::format("hubcache_served_bytes_total{{cache=\"{}\"}} {}\n",
                       CacheStatusName(static_cast<CacheStatus>(i)), served_bytes_[i].load());
  }
  {
    std::lock_guard lock(mu_);
    counter("hubcache_source_fetches_total",
            "Blob source attempts, by source (hub, peer) and result (ok, unavailable, failed).");
    for (const auto& [key, n] : source_fetches_) {
      out += fmt::format("hubcache_source_fetches_total{{source=\"{}\",result=\"{}\"}} {}\n",
                         key.first, key.second, n);
    }
    counter("hubcache_source_bytes_total", "Blob bytes written into the store, by source.");
    for (const auto& [source, n] : source_bytes_) {
      out += fmt::format("hubcache_source_bytes_total{{source=\"{}\"}} {}\n", source, n);
    }
  }
  counter("hubcache_upstream_bytes_total", "Body bytes received from the Hub and its CDN.");
  out += fmt::format("hubcache_upstream_bytes_total {}\n", upstream_bytes_.load());
  counter("hubcache_coalesced_requests_total",
          "Requests that joined a download another request had started.");
  out += fmt::format("hubcache_coalesced_requests_total {}\n", coalesced_.load());
  counter("hubcache_grant_checks_total", "Access checks asked of the Hub, by outcome.");
  out += fmt::format("hubcache_grant_checks_total{{result=\"allowed\"}} {}\n",
                     grants_allowed_.load());
  out += fmt::format("hubcache_grant_checks_total{{result=\"refused\"}} {}\n",
                     grants_refused_.load());
  gauge("hubcache_fetches_in_flight", "Blob downloads running now.");
  out += fmt::format("hubcache_fetches_in_flight {}\n", fetches_in_flight);
  gauge("hubcache_store_bytes", "Bytes of committed blobs in the store.");
  out += fmt::format("hubcache_store_bytes {}\n", store.used_bytes());
  gauge("hubcache_store_blobs", "Committed blobs in the store.");
  const auto blobs = store.BlobCount();
  out += fmt::format("hubcache_store_blobs {}\n", blobs ? *blobs : 0);
  counter("hubcache_evictions_total", "Blobs evicted to make room.");
  out += fmt::format("hubcache_evictions_total {}\n", store.evictions());
  counter("hubcache_store_touch_failures_total",
          "Batches of last-access updates the index could not write (eviction order suffers).");
  out += fmt::format("hubcache_store_touch_failures_total {}\n", store.touch_failures());
  counter("hubcache_digest_mismatches_total", "Downloads discarded because their digest was wrong.");
  out += fmt::format("hubcache_digest_mismatches_total {}\n", store.digest_mismatches());
  counter("hubcache_store_quarantined_total",
          "Stored blobs taken out because their file could not be read back (moved to quarantine/).");
  out += fmt::format("hubcache_store_quarantined_total {}\n", store.quarantined());
  if (extra_) out += extra_();
  return out;
}

}  // namespace hubcache::proxy
