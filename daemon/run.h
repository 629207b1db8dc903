// Run(): the `hubcache serve` process, wired in one readable function.
//
// Builds every component in dependency order (logging, cache directory,
// store, Hub client, proxy, HTTP server), serves until SIGTERM or SIGINT,
// then shuts down gracefully: stop accepting, close idle connections, give
// requests in flight server.shutdown_timeout to finish, stop. A second signal
// stops at once. SIGHUP reloads the configuration (daemon/reload.h); systemd
// is told READY, RELOADING and STOPPING, and fed its watchdog
// (daemon/notify.h).
#pragma once

#include <functional>
#include <string>

#include <tl/expected.hpp>

#include "config/config.h"

namespace hubcache::daemon {

// Loads the configuration again from the sources `serve` started with (for
// SIGHUP); an error is a message naming each problem.
using Reloader = std::function<tl::expected<config::Loaded, std::string>()>;

// Returns the process exit code (see cli.h). Blocks until shutdown.
int Run(const config::Loaded& loaded, Reloader reload = {});

}  // namespace hubcache::daemon
