#include "daemon/progress.h"

#include <algorithm>

#include <fmt/format.h>

#include "daemon/human.h"

namespace hubcache::daemon {
namespace {

constexpr std::size_t kShownFiles = 8;
constexpr int kBarWidth = 30;
constexpr auto kRateWindow = std::chrono::seconds(5);

std::string Shorten(const std::string& path, std::size_t width) {
  if (path.size() <= width) return path;
  return "..." + path.substr(path.size() - (width - 3));
}

}  // namespace

void Progress::StartTarget(std::string label, std::size_t files, std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  label_ = std::move(label);
  files_total_ = files;
  bytes_total_ = bytes;
  files_done_ = 0;
  bytes_done_ = 0;
  in_flight_.clear();
  samples_.clear();
  started_ = Clock::now();
  samples_.emplace_back(started_, 0);
  fmt::print(out_, "prefetch {}: {} files, {}\n", label_, files, HumanSize(bytes));
  std::fflush(out_);
}

int Progress::StartFile(std::string path, std::uint64_t size) {
  std::lock_guard lock(mu_);
  const int id = next_id_++;
  in_flight_[id] = InFlight{.path = std::move(path), .size = size, .done = 0};
  return id;
}

void Progress::Add(int id, std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  it->second.done += bytes;
  bytes_done_ += bytes;
}

void Progress::EndFile(int id, bool ok, const std::string& how) {
  std::lock_guard lock(mu_);
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  const InFlight file = it->second;
  in_flight_.erase(it);
  // Count the whole file as done (a cached file moved no bytes).
  bytes_done_ += file.size - std::min(file.size, file.done);
  files_done_ += 1;
  if (terminal_) {
    if (ok) return;  // the bar says it; failures stay on screen
    EraseLocked();
    fmt::print(out_, "  FAILED {}: {}\n", file.path, how);
    DrawLocked();
    return;
  }
  fmt::print(out_, "prefetch {}: [{}/{}] {} ({}) {}{}\n", label_, files_done_, files_total_,
             file.path, HumanSize(file.size), ok ? "" : "FAILED: ", how);
  std::fflush(out_);
}

void Progress::Tick() {
  if (!terminal_) return;
  std::lock_guard lock(mu_);
  EraseLocked();
  DrawLocked();
}

void Progress::EndTarget() {
  std::lock_guard lock(mu_);
  if (terminal_) EraseLocked();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - started_).count();
  fmt::print(out_, "prefetch {}: {}/{} files, {} in {}\n", label_, files_done_, files_total_,
             HumanSize(bytes_total_), HumanDuration(seconds));
  label_.clear();
  std::fflush(out_);
}

double Progress::RateLocked() {
  const auto now = Clock::now();
  samples_.emplace_back(now, bytes_done_);
  while (samples_.size() > 2 && now - samples_.front().first > kRateWindow) samples_.pop_front();
  const double seconds =
      std::chrono::duration<double>(now - samples_.front().first).count();
  if (seconds < 0.2) return 0;
  return static_cast<double>(bytes_done_ - samples_.front().second) / seconds;
}

void Progress::EraseLocked() {
  if (drawn_lines_ > 0) fmt::print(out_, "\x1b[{}F\x1b[J", drawn_lines_);
  drawn_lines_ = 0;
}

void Progress::DrawLocked() {
  if (label_.empty()) return;  // between targets
  std::size_t shown = 0;
  for (const auto& [id, file] : in_flight_) {
    if (shown++ == kShownFiles) {
      fmt::print(out_, "  ... and {} more\n", in_flight_.size() - kShownFiles);
      ++drawn_lines_;
      break;
    }
    fmt::print(out_, "  {:<50} {:>10} / {:<10}\n", Shorten(file.path, 50), HumanSize(file.done),
               HumanSize(file.size));
    ++drawn_lines_;
  }
  const double fraction =
      bytes_total_ == 0 ? 1.0
                        : static_cast<double>(std::min(bytes_done_, bytes_total_)) /
                              static_cast<double>(bytes_total_);
  const int filled = static_cast<int>(fraction * kBarWidth);
  const double rate = RateLocked();
  const double eta =
      rate > 0 ? static_cast<double>(bytes_total_ - std::min(bytes_done_, bytes_total_)) / rate
               : -1;
  fmt::print(out_, "[{}{}] {:>3}% {} / {}  {}  ETA {}  files {}/{}\n", std::string(filled, '#'),
             std::string(kBarWidth - filled, '.'), static_cast<int>(fraction * 100),
             HumanSize(bytes_done_), HumanSize(bytes_total_), HumanRate(rate),
             HumanDuration(eta), files_done_, files_total_);
  ++drawn_lines_;
  std::fflush(out_);
}

// One node's line. Its methods take the board's lock.
class NodesProgress::Row final : public ProgressSink {
 public:
  Row(NodesProgress& board, std::string node) : board_(board), node_(std::move(node)) {}

  void StartTarget(std::string label, std::size_t files, std::uint64_t bytes) override {
    std::lock_guard lock(board_.mu_);
    label_ = std::move(label);
    files_total_ += files;
    bytes_total_ += bytes;
  }
  int StartFile(std::string, std::uint64_t size) override {
    std::lock_guard lock(board_.mu_);
    const int id = next_id_++;
    in_flight_[id] = {size, 0};
    return id;
  }
  void Add(int id, std::uint64_t bytes) override {
    std::lock_guard lock(board_.mu_);
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) return;
    it->second.second += bytes;
    bytes_done_ += bytes;
  }
  void EndFile(int id, bool ok, const std::string& how) override {
    std::lock_guard lock(board_.mu_);
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) return;
    const auto [size, done] = it->second;
    in_flight_.erase(it);
    bytes_done_ += size - std::min(size, done);
    files_done_ += 1;
    if (ok) return;
    failed_ += 1;
    board_.EraseLocked();
    fmt::print(board_.out_, "{}: {}: FAILED: {}\n", node_, label_, how);
    board_.DrawLocked();
  }
  void EndTarget() override {
    std::lock_guard lock(board_.mu_);
    if (board_.terminal_) return;  // the line says it
    fmt::print(board_.out_, "{}: {}: {}/{} files, {}{}\n", node_, label_, files_done_,
               files_total_, HumanSize(bytes_total_),
               failed_ == 0 ? "" : fmt::format(", {} FAILED", failed_));
    std::fflush(board_.out_);
  }

  // REQUIRES: the board's lock.
  void Draw() {
    const auto now = Clock::now();
    samples_.emplace_back(now, bytes_done_);
    while (samples_.size() > 2 && now - samples_.front().first > kRateWindow) samples_.pop_front();
    const double seconds = std::chrono::duration<double>(now - samples_.front().first).count();
    const double rate =
        seconds < 0.2 ? 0 : static_cast<double>(bytes_done_ - samples_.front().second) / seconds;
    const double fraction =
        bytes_total_ == 0 ? (files_total_ == 0 ? 0.0 : 1.0)
                          : static_cast<double>(std::min(bytes_done_, bytes_total_)) /
                                static_cast<double>(bytes_total_);
    const int filled = static_cast<int>(fraction * kBarWidth);
    fmt::print(board_.out_, "{:<24} [{}{}] {:>3}% {:>10} / {:<10} {:>12}  files {}/{}{}\n",
               Shorten(node_, 24), std::string(filled, '#'), std::string(kBarWidth - filled, '.'),
               static_cast<int>(fraction * 100), HumanSize(bytes_done_), HumanSize(bytes_total_),
               HumanRate(rate), files_done_, files_total_,
               failed_ == 0 ? "" : fmt::format("  {} FAILED", failed_));
  }

 private:
  NodesProgress& board_;
  const std::string node_;
  std::string label_;
  std::size_t files_total_ = 0;
  std::size_t files_done_ = 0;
  std::size_t failed_ = 0;
  std::uint64_t bytes_total_ = 0;
  std::uint64_t bytes_done_ = 0;
  std::map<int, std::pair<std::uint64_t, std::uint64_t>> in_flight_;  // id: size, done
  int next_id_ = 0;
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;
};

NodesProgress::NodesProgress(std::FILE* out, bool terminal, std::vector<std::string> nodes)
    : out_(out), terminal_(terminal) {
  for (std::string& node : nodes) rows_.push_back(std::make_unique<Row>(*this, std::move(node)));
}

NodesProgress::~NodesProgress() = default;

ProgressSink& NodesProgress::node(std::size_t i) { return *rows_[i]; }

void NodesProgress::Tick() {
  if (!terminal_) return;
  std::lock_guard lock(mu_);
  EraseLocked();
  DrawLocked();
}

void NodesProgress::Finish() {
  std::lock_guard lock(mu_);
  if (terminal_) {
    EraseLocked();
    for (auto& row : rows_) row->Draw();  // the last state stays on screen
  }
  std::fflush(out_);
}

void NodesProgress::EraseLocked() {
  if (drawn_lines_ > 0) fmt::print(out_, "\x1b[{}F\x1b[J", drawn_lines_);
  drawn_lines_ = 0;
}

void NodesProgress::DrawLocked() {
  if (!terminal_) return;
  for (auto& row : rows_) {
    row->Draw();
    ++drawn_lines_;
  }
  std::fflush(out_);
}

}  // namespace hubcache::daemon
