#include "daemon/human.h"

#include <ctime>

#include <fmt/format.h>

namespace hubcache::daemon {

std::string HumanSize(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string HumanRate(double bytes_per_second) {
  if (bytes_per_second < 0) bytes_per_second = 0;
  return HumanSize(static_cast<std::uint64_t>(bytes_per_second)) + "/s";
}

std::string HumanDuration(double seconds) {
  if (seconds < 0 || seconds > 1e8) return "--";
  const auto s = static_cast<std::uint64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string HumanTime(std::int64_t unix_seconds) {
  if (unix_seconds <= 0) return "never";
  const std::time_t t = unix_seconds;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

}  // namespace hubcache::daemon
