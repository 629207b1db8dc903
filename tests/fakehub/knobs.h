// Knobs: the run-time behaviour switches of a FakeHub that tests turn while
// it serves: injected faults, bandwidth limits, latency, signed-URL
// lifetime, and the request log.
//
// Faults are matched per request in the order they were added (see Fault in
// fake_hub.h for their meaning). Bandwidth is shaped with token buckets that
// tell the caller how long to wait (a timer), never by spinning.
//
// Thread safety: every member is thread-safe. No lock is held while a caller
// waits or calls out, except on_request, which runs outside the log lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fakehub/fake_hub.h"

namespace hubcache::fakehub {

using Clock = std::chrono::steady_clock;

// The body faults chosen for one response.
struct BodyFaults {
  std::int64_t drop_after = -1;  // send this many body bytes, then close
  bool stall = false;
  std::optional<std::uint64_t> flip_offset;  // file offset
  bool short_body = false;
  bool ignore_range = false;
  bool gzip = false;
  std::int64_t length_delta = 0;
  bool any() const {
    return drop_after >= 0 || stall || flip_offset || short_body || ignore_range || gzip ||
           length_delta != 0;
  }
};

// A pacing bucket: Reserve() says when `bytes` may start so that the sum of
// reservations does not exceed `rate` bytes per second. Idle time is not
// saved up, so there are no bursts after a pause.
class RateLimiter {
 public:
  // The time the caller may send `bytes`; `rate` 0 means unlimited (now).
  Clock::time_point Reserve(std::uint64_t bytes, std::uint64_t rate);

 private:
  std::mutex mu_;
  Clock::time_point next_{};  // GUARDED_BY(mu_)
};

class Knobs {
 public:
  explicit Knobs(const Options& options);

  // Throws std::invalid_argument unless fail_status is 5xx or 429.
  void AddFault(Fault fault);
  void ClearFaults();
  std::vector<Fault> Faults() const;

  // If a fault with remaining `fail_first` matches the path (raw or
  // decoded), consumes one and returns its status and delay.
  struct StatusFault {
    unsigned status;
    std::chrono::milliseconds delay;
  };
  std::optional<StatusFault> TakeStatusFault(std::string_view raw_path, std::string_view path);
  // The body faults for a content response covering file bytes
  // [file_first, file_first + size); consumes one use of the first matching
  // fault that can affect such a response.
  BodyFaults TakeBodyFaults(std::string_view raw_path, std::string_view path,
                            std::uint64_t file_first, std::uint64_t size);

  void SetBandwidth(std::uint64_t conn_bytes_per_sec, std::uint64_t total_bytes_per_sec);
  std::uint64_t conn_rate() const { return conn_rate_.load(); }
  std::uint64_t total_rate() const { return total_rate_.load(); }
  RateLimiter& total_limiter() { return total_limiter_; }

  void SetLatency(std::chrono::milliseconds latency) { latency_ms_ = latency.count(); }
  std::chrono::milliseconds latency() const {
    return std::chrono::milliseconds(latency_ms_.load());
  }
  void SetSignedUrlTtl(std::chrono::seconds ttl) { ttl_s_ = ttl.count(); }
  std::chrono::seconds signed_url_ttl() const { return std::chrono::seconds(ttl_s_.load()); }

  // Appends an entry for a response about to be written, with the body
  // bytes it plans to send, and returns its id. The oldest entries go beyond
  // a million.
  std::uint64_t Begin(const LogEntry& entry);
  // Sets the entry's body_bytes_sent to what was actually sent (if it is
  // still in the log) and calls the on_request callback with `done`.
  void Finish(std::uint64_t id, const LogEntry& done);
  std::vector<LogEntry> Log() const;
  void ClearLog();
  std::uint64_t BodyBytesSent(std::string_view path_contains) const;
  std::size_t RequestCount(std::string_view path_contains) const;

 private:
  static bool Matches(const Fault& fault, std::string_view raw_path, std::string_view path);

  std::atomic<std::uint64_t> conn_rate_;
  std::atomic<std::uint64_t> total_rate_;
  std::atomic<std::int64_t> latency_ms_;
  std::atomic<std::int64_t> ttl_s_;
  RateLimiter total_limiter_;
  const std::function<void(const LogEntry&)> on_request_;

  mutable std::mutex fault_mu_;
  std::vector<Fault> faults_;  // GUARDED_BY(fault_mu_)

  mutable std::mutex log_mu_;
  std::deque<LogEntry> log_;        // GUARDED_BY(log_mu_)
  std::uint64_t first_log_id_ = 1;  // id of log_.front(); GUARDED_BY(log_mu_)
};

}  // namespace hubcache::fakehub
