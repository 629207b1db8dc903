// `hubcache verify`: rehashes every cached blob and reports (and with
// --repair fixes) corrupt blobs, missing files and orphans.
#pragma once

#include "config/config.h"

namespace hubcache::daemon {

// Returns the exit code: 0 when the store is clean, 1 when problems were
// found (fixed or not) or the store could not be opened (a running daemon
// holds it: verify refuses rather than race it).
int Verify(const config::Loaded& loaded, bool repair);

}  // namespace hubcache::daemon
