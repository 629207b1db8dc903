#include "tests/fakehub/knobs.h"

#include <stdexcept>
#include <utility>

#include "tests/fakehub/http_util.h"

namespace hubcache::fakehub {
namespace {

constexpr std::size_t kMaxLogEntries = 1'000'000;

bool TargetMatches(const LogEntry& entry, std::string_view needle) {
  if (needle.empty() || entry.target.find(needle) != std::string::npos) return true;
  const auto decoded = PercentDecode(entry.target);
  return decoded && decoded->find(needle) != std::string::npos;
}

}  // namespace

Clock::time_point RateLimiter::Reserve(std::uint64_t bytes, std::uint64_t rate) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  if (rate == 0) {
    next_ = now;
    return now;
  }
  const auto start = std::max(next_, now);
  next_ = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                      static_cast<double>(bytes) / static_cast<double>(rate)));
  return start;
}

Knobs::Knobs(const Options& options)
    : conn_rate_(options.conn_bytes_per_sec),
      total_rate_(options.total_bytes_per_sec),
      latency_ms_(options.latency.count()),
      ttl_s_(options.signed_url_ttl.count()),
      on_request_(options.on_request) {}

void Knobs::AddFault(Fault fault) {
  const bool ok =
      fault.fail_status == 429 || (fault.fail_status >= 500 && fault.fail_status <= 599);
  if (!ok) {
    throw std::invalid_argument("fakehub fault: fail_status must be 5xx or 429, not " +
                                std::to_string(fault.fail_status));
  }
  std::lock_guard lock(fault_mu_);
  faults_.push_back(std::move(fault));
}

void Knobs::ClearFaults() {
  std::lock_guard lock(fault_mu_);
  faults_.clear();
}

std::vector<Fault> Knobs::Faults() const {
  std::lock_guard lock(fault_mu_);
  return faults_;
}

bool Knobs::Matches(const Fault& fault, std::string_view raw_path, std::string_view path) {
  return fault.path_contains.empty() || raw_path.find(fault.path_contains) != std::string::npos ||
         path.find(fault.path_contains) != std::string::npos;
}

std::optional<Knobs::StatusFault> Knobs::TakeStatusFault(std::string_view raw_path,
                                                         std::string_view path) {
  std::lock_guard lock(fault_mu_);
  for (Fault& fault : faults_) {
    if (fault.fail_first == 0 || !Matches(fault, raw_path, path)) continue;
    if (fault.fail_first > 0) --fault.fail_first;
    return StatusFault{fault.fail_status, fault.fail_delay};
  }
  return std::nullopt;
}

BodyFaults Knobs::TakeBodyFaults(std::string_view raw_path, std::string_view path,
                                 std::uint64_t file_first, std::uint64_t size) {
  BodyFaults out;
  if (size == 0) return out;
  std::lock_guard lock(fault_mu_);
  for (Fault& fault : faults_) {
    if (fault.drop_times == 0 || fault.fail_first != 0 || !Matches(fault, raw_path, path)) continue;
    BodyFaults plan;
    if (fault.drop_after_bytes >= 0 && static_cast<std::uint64_t>(fault.drop_after_bytes) < size) {
      plan.drop_after = fault.drop_after_bytes;
    }
    plan.stall = fault.stall;
    if (fault.flip_byte && fault.flip_offset >= file_first &&
        fault.flip_offset - file_first < size) {
      plan.flip_offset = fault.flip_offset;
    }
    plan.short_body = fault.short_body;
    plan.ignore_range = fault.ignore_range;
    plan.gzip = fault.gzip;
    plan.length_delta = fault.length_delta;
    if (!plan.any()) continue;
    if (fault.drop_times > 0) --fault.drop_times;
    return plan;
  }
  return out;
}

void Knobs::SetBandwidth(std::uint64_t conn_bytes_per_sec, std::uint64_t total_bytes_per_sec) {
  conn_rate_ = conn_bytes_per_sec;
  total_rate_ = total_bytes_per_sec;
}

std::uint64_t Knobs::Begin(const LogEntry& entry) {
  std::lock_guard lock(log_mu_);
  log_.push_back(entry);
  if (log_.size() > kMaxLogEntries) {
    log_.pop_front();
    ++first_log_id_;
  }
  return first_log_id_ + log_.size() - 1;
}

void Knobs::Finish(std::uint64_t id, const LogEntry& done) {
  {
    std::lock_guard lock(log_mu_);
    if (id >= first_log_id_ && id - first_log_id_ < log_.size()) {
      log_[id - first_log_id_].body_bytes_sent = done.body_bytes_sent;
    }
  }
  if (on_request_) on_request_(done);
}

std::vector<LogEntry> Knobs::Log() const {
  std::lock_guard lock(log_mu_);
  return {log_.begin(), log_.end()};
}

void Knobs::ClearLog() {
  std::lock_guard lock(log_mu_);
  first_log_id_ += log_.size();
  log_.clear();
}

std::uint64_t Knobs::BodyBytesSent(std::string_view path_contains) const {
  std::lock_guard lock(log_mu_);
  std::uint64_t sum = 0;
  for (const LogEntry& entry : log_) {
    if (TargetMatches(entry, path_contains)) sum += entry.body_bytes_sent;
  }
  return sum;
}

std::size_t Knobs::RequestCount(std::string_view path_contains) const {
  std::lock_guard lock(log_mu_);
  std::size_t n = 0;
  for (const LogEntry& entry : log_) n += TargetMatches(entry, path_contains) ? 1 : 0;
  return n;
}

}  // namespace hubcache::fakehub
