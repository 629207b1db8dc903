// Run(): the `hubcache serve` process, wired in one readable function.
//
// Builds every component in dependency order (logging, cache directory,
// event loop, HTTP server), serves until SIGTERM or SIGINT, then shuts down
// gracefully: stop accepting, close idle connections, give requests in flight
// server.shutdown_timeout to finish, stop. A second signal stops at once.
#pragma once

#include "config/config.h"

namespace hubcache::daemon {

// Returns the process exit code (see cli.h). Blocks until shutdown.
int Run(const config::Loaded& loaded);

}  // namespace hubcache::daemon
