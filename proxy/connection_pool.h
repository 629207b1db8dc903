// ConnectionPool: idle keep-alive upstream connections, per origin.
//
// A request borrows an idle connection to its origin (the most recently used
// one, so that the others can time out) or opens a new one, and gives it back
// after a complete response that allows keep-alive. The pool keeps at most
// `idle_per_origin` idle connections per origin and `max_idle` in all, and
// drops those idle longer than `idle_timeout`.
//
// Thread safety: all methods are thread-safe; the mutex is never held across
// a suspension point. Connections in the pool are not used by anyone.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "proxy/upstream_connection.h"

namespace hubcache::proxy {

class ConnectionPool {
 public:
  struct Limits {
    std::size_t idle_per_origin = 16;
    std::size_t max_idle = 256;
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(50);
  };

  explicit ConnectionPool(Limits limits) : limits_(limits) {}

  // An idle connection to `origin`, or nullptr.
  std::unique_ptr<UpstreamConnection> Take(const Origin& origin);
  // Gives a connection back for reuse (it may be dropped to honour limits).
  void Put(std::unique_ptr<UpstreamConnection> connection);

  // Closes every idle connection (a client that is done, before its
  // io_context stops).
  void Clear();

  // Counts for tests and metrics.
  std::size_t idle_count() const;
  std::uint64_t opened() const { return opened_.load(); }
  void CountOpened() { ++opened_; }

 private:
  void EvictExpired();  // REQUIRES: mu_ held

  const Limits limits_;
  mutable std::mutex mu_;
  // Origin key → idle connections, most recently used at the back.
  std::map<std::string, std::deque<std::unique_ptr<UpstreamConnection>>> idle_;  // GUARDED_BY(mu_)
  std::size_t idle_total_ = 0;                                                   // GUARDED_BY(mu_)
  std::atomic<std::uint64_t> opened_{0};
};

}  // namespace hubcache::proxy
