// What a SIGHUP reload may change in a running daemon.
//
// The configuration is loaded again from the same file, environment and
// flags; the keys that can change at run time (log level and format, the ref
// and access TTLs) are applied, every other changed key is reported as
// needing a restart.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace hubcache::daemon {

struct ReloadPlan {
  std::vector<std::string> applied;          // changed keys applied at run time
  std::vector<std::string> restart_needed;   // changed keys that need a restart
};

// Compares the effective values of every key in `before` and `after`.
ReloadPlan PlanReload(const config::Loaded& before, const config::Loaded& after);

// True for keys a running daemon applies on reload.
bool IsReloadable(std::string_view key);

}  // namespace hubcache::daemon
