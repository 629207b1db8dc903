// `hubcache verify`: rehashes every cached blob and reports (and with
// --repair fixes) corrupt blobs, missing files and orphans.
#pragma once

#include <cstdint>
#include <optional>

#include "config/config.h"

namespace hubcache::daemon {

// Returns the exit code: 0 when the store is clean, 1 when problems were
// found (fixed or not) or the store could not be opened (a running daemon
// holds it: verify refuses rather than race it).
int Verify(const config::Loaded& loaded, bool repair);

// `hubcache gc [--to SIZE]`: evicts least-recently-used unpinned blobs until
// the store holds at most `to_bytes`, or, without it, until the configured
// limits (store.max_bytes, store.min_free_percent) are met. Refuses while a
// daemon holds the cache directory.
int Gc(const config::Loaded& loaded, std::optional<std::uint64_t> to_bytes);

}  // namespace hubcache::daemon
