// Opening the store for an offline command (verify, gc): the cache
// directory's lock first, so that a running daemon is never raced, with the
// error a person at a terminal needs when it is held.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "config/config.h"
#include "store/blob_store.h"
#include "store/cache_dir.h"

namespace hubcache::daemon {

struct OpenedStore {
  std::unique_ptr<store::CacheDir> lock;
  std::unique_ptr<store::BlobStore> store;
};

// Locks the cache directory and opens the store (with crash recovery when
// `recover`). On failure prints why to stderr, naming `command` and the pid
// of a daemon holding the directory, and returns nullopt.
std::optional<OpenedStore> OpenStoreForCommand(const config::Config& config,
                                               std::string_view command, bool recover);

}  // namespace hubcache::daemon
