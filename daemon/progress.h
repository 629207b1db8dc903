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
#include <memory>
#include <string>
#include <vector>

namespace hubcache::daemon {

// What the prefetch of one node reports as it goes.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // A new revision: `files` files of `bytes` bytes in total.
  virtual void StartTarget(std::string label, std::size_t files, std::uint64_t bytes) = 0;
  // A file starts; returns its id for Add/EndFile.
  virtual int StartFile(std::string path, std::uint64_t size) = 0;
  virtual void Add(int id, std::uint64_t bytes) = 0;
  // `how`: "cached" (already there), "fetched", or why it failed.
  virtual void EndFile(int id, bool ok, const std::string& how) = 0;
  // The revision is done.
  virtual void EndTarget() = 0;
};

class Progress final : public ProgressSink {
 public:
  Progress(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

  void StartTarget(std::string label, std::size_t files, std::uint64_t bytes) override;
  int StartFile(std::string path, std::uint64_t size) override;
  void Add(int id, std::uint64_t bytes) override;
  void EndFile(int id, bool ok, const std::string& how) override;
  // Redraws the terminal lines (call a few times a second).
  void Tick();
  // Clears the terminal lines of the target and prints its one-line result.
  void EndTarget() override;

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

// The progress of a cluster prefetch: one line per node (bytes, rate, files),
// redrawn in place on a terminal; when not a terminal, a line per failed
// file and per node at the end of each revision.
class NodesProgress {
 public:
  NodesProgress(std::FILE* out, bool terminal, std::vector<std::string> nodes);
  ~NodesProgress();
  NodesProgress(const NodesProgress&) = delete;
  NodesProgress& operator=(const NodesProgress&) = delete;

  // What the prefetch of node `i` (in the order given) reports to.
  ProgressSink& node(std::size_t i);
  void Tick();
  // Clears the terminal lines.
  void Finish();

 private:
  using Clock = std::chrono::steady_clock;
  class Row;
  void DrawLocked();
  void EraseLocked();

  std::FILE* const out_;
  const bool terminal_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Row>> rows_;  // each row's state GUARDED_BY(mu_)
  int drawn_lines_ = 0;                     // GUARDED_BY(mu_)
};

}  // namespace hubcache::daemon
