// Progress of a prefetch for a person or a log: on a terminal, one line per
// file in flight and a total bar (bytes, rate, ETA), redrawn in place; when
// not a terminal, one plain line per finished file.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace hubcache::daemon {

class Progress {
 public:
  Progress(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

  // A new revision: `files` files of `bytes` bytes in total.
  void StartTarget(std::string label, std::size_t files, std::uint64_t bytes);
  // A file starts; returns its id for Add/EndFile.
  int StartFile(std::string path, std::uint64_t size);
  void Add(int id, std::uint64_t bytes);
  // `how`: "cached" (already there), "fetched", or why it failed.
  void EndFile(int id, bool ok, const std::string& how);
  // Redraws the terminal lines (call a few times a second).
  void Tick();
  // Clears the terminal lines of the target and prints its one-line result.
  void EndTarget();

 private:
  using Clock = std::chrono::steady_clock;
  struct InFlight {
    std::string path;
    std::uint64_t size = 0;
    std::uint64_t done = 0;
  };
  void DrawLocked();
  void EraseLocked();
  double RateLocked();

  std::FILE* const out_;
  const bool terminal_;
  std::mutex mu_;
  std::string label_;                 // GUARDED_BY(mu_)
  std::size_t files_total_ = 0;       // GUARDED_BY(mu_)
  std::size_t files_done_ = 0;        // GUARDED_BY(mu_)
  std::uint64_t bytes_total_ = 0;     // GUARDED_BY(mu_)
  std::uint64_t bytes_done_ = 0;      // GUARDED_BY(mu_)
  std::map<int, InFlight> in_flight_; // GUARDED_BY(mu_)
  int next_id_ = 0;                   // GUARDED_BY(mu_)
  int drawn_lines_ = 0;               // GUARDED_BY(mu_)
  Clock::time_point started_;         // GUARDED_BY(mu_)
  // (time, bytes_done_) samples of the last seconds, for the rate.
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;  // GUARDED_BY(mu_)
};

}  // namespace hubcache::daemon
