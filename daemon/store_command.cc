#include "daemon/store_command.h"

#include <cstdio>

#include <fmt/format.h>

#include "core/errc.h"

namespace hubcache::daemon {

std::optional<OpenedStore> OpenStoreForCommand(const config::Config& config,
                                               std::string_view command, bool recover) {
  const std::string& dir = config.store.cache_dir;
  auto cache_dir = store::CacheDir::Open(dir);
  if (!cache_dir) {
    if (cache_dir.error() == core::Errc::kLocked) {
      const auto holder = store::CacheDir::HolderPid(dir);
      fmt::print(stderr,
                 "hubcache: cache directory {} is in use by a running hubcache{}; stop it "
                 "before running {}\n",
                 dir, holder ? fmt::format(" (pid {})", *holder) : "", command);
    } else {
      fmt::print(stderr, "hubcache: cannot open cache directory {}: {}\n", dir,
                 cache_dir.error().message());
    }
    return std::nullopt;
  }
  auto opened = store::BlobStore::Open(config.store, recover);
  if (!opened) {
    fmt::print(stderr, "hubcache: cannot open the store in {}: {}\n", dir,
               opened.error().message());
    return std::nullopt;
  }
  return OpenedStore{std::move(*cache_dir), std::move(*opened)};
}

}  // namespace hubcache::daemon
