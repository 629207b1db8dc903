// systemd integration: the service manager's notification socket
// (sd_notify(3)). Without NOTIFY_SOCKET (not started by systemd with
// Type=notify) every call does nothing.
//
//   READY=1     once the store is open and the listeners are up
//   RELOADING=1 while a SIGHUP reload runs, then READY=1 again
//   STOPPING=1  when shutdown starts
//   WATCHDOG=1  every half WatchdogSec, from the event loop, if enabled
//   STATUS=...  a one-line status for `systemctl status`
//
// Thread safety: thread-safe (sd_notify is).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace hubcache::daemon {

void Notify(std::string_view state);

// The watchdog interval systemd asked for (WATCHDOG_USEC), if any.
std::optional<std::chrono::microseconds> WatchdogInterval();

}  // namespace hubcache::daemon
