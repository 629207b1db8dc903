#include "daemon/verify.h"

#include <cstdio>

#include <fmt/format.h>

#include "core/errc.h"
#include "core/log.h"
#include "daemon/cli.h"
#include "store/blob_store.h"
#include "store/cache_dir.h"
#include "store/fsck.h"

namespace hubcache::daemon {

int Verify(const config::Loaded& loaded, bool repair) {
  const config::Config& config = loaded.config;
  log::Configure(config.log);
  const std::string& dir = config.store.cache_dir;
  auto cache_dir = store::CacheDir::Open(dir);
  if (!cache_dir) {
    if (cache_dir.error() == core::Errc::kLocked) {
      const auto holder = store::CacheDir::HolderPid(dir);
      std::fprintf(stderr,
                   "hubcache: cache directory %s is in use by a running hubcache%s; stop it "
                   "before running verify\n",
                   dir.c_str(), holder ? fmt::format(" (pid {})", *holder).c_str() : "");
    } else {
      std::fprintf(stderr, "hubcache: cannot open cache directory %s: %s\n", dir.c_str(),
                   cache_dir.error().message().c_str());
    }
    return kExitFailure;
  }
  auto store = store::BlobStore::Open(config.store, /*recover=*/false);
  if (!store) {
    std::fprintf(stderr, "hubcache: cannot open the store in %s: %s\n", dir.c_str(),
                 store.error().message().c_str());
    return kExitFailure;
  }
  auto report = store::Fsck(**store, repair ? store::FsckMode::kRepair : store::FsckMode::kVerify);
  if (!report) {
    std::fprintf(stderr, "hubcache: verify failed: %s\n", report.error().message().c_str());
    return kExitFailure;
  }
  for (const std::string& problem : report->problems) std::printf("%s\n", problem.c_str());
  std::printf(
      "verified %llu blobs (%llu bytes hashed) in %s: %llu corrupt, %llu missing, %llu wrong "
      "size, %llu orphans%s\n",
      static_cast<unsigned long long>(report->blobs_checked),
      static_cast<unsigned long long>(report->bytes_hashed), dir.c_str(),
      static_cast<unsigned long long>(report->corrupt),
      static_cast<unsigned long long>(report->missing),
      static_cast<unsigned long long>(report->wrong_size),
      static_cast<unsigned long long>(report->orphans),
      report->clean() ? "" : (repair ? "; repaired" : "; run with --repair to fix"));
  return report->clean() ? kExitOk : kExitFailure;
}

}  // namespace hubcache::daemon
