// Numbers for people at a terminal: sizes, rates, durations, timestamps.
#pragma once

#include <cstdint>
#include <string>

namespace hubcache::daemon {

// "0 B", "512 B", "1.5 KiB", "12.0 GiB".
std::string HumanSize(std::uint64_t bytes);
// "1.2 MiB/s".
std::string HumanRate(double bytes_per_second);
// "42s", "3m07s", "2h05m"; "--" when unknown (negative).
std::string HumanDuration(double seconds);
// "2026-11-23 21:40" in UTC, "never" for 0.
std::string HumanTime(std::int64_t unix_seconds);

}  // namespace hubcache::daemon
