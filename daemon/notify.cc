#include "daemon/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <string>

namespace hubcache::daemon {

void Notify(std::string_view state) {
  const std::string text(state);
  sd_notify(0, text.c_str());
}

std::optional<std::chrono::microseconds> WatchdogInterval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace hubcache::daemon
