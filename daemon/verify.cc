#include "daemon/verify.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "core/log.h"
#include "daemon/cli.h"
#include "daemon/store_command.h"
#include "store/fsck.h"

namespace hubcache::daemon {

int Verify(const config::Loaded& loaded, bool repair) {
  const config::Config& config = loaded.config;
  log::Configure(config.log);
  const std::string& dir = config.store.cache_dir;
  auto opened = OpenStoreForCommand(config, "verify", /*recover=*/false);
  if (!opened) return kExitFailure;
  auto& store = opened->store;
  auto report = store::Fsck(*store, repair ? store::FsckMode::kRepair : store::FsckMode::kVerify);
  if (!report) {
    std::fprintf(stderr, "hubcache: verify failed: %s\n", report.error().message().c_str());
    return kExitFailure;
  }
  for (const std::string& problem : report->problems) std::printf("%s\n", problem.c_str());
  std::printf(
      "verified %llu blobs (%llu bytes hashed) in %s: %llu corrupt, %llu missing, %llu wrong "
      "size, %llu orphans%s%s\n",
      static_cast<unsigned long long>(report->blobs_checked),
      static_cast<unsigned long long>(report->bytes_hashed), dir.c_str(),
      static_cast<unsigned long long>(report->corrupt),
      static_cast<unsigned long long>(report->missing),
      static_cast<unsigned long long>(report->wrong_size),
      static_cast<unsigned long long>(report->orphans),
      report->interrupted == 0
          ? ""
          : fmt::format("; {} blobs of a commit a crash interrupted (sound; the next start "
                        "indexes them)",
                        report->interrupted)
                .c_str(),
      report->clean() ? "" : (repair ? "; repaired" : "; run with --repair to fix"));
  return report->clean() ? kExitOk : kExitFailure;
}

int Gc(const config::Loaded& loaded, std::optional<std::uint64_t> to_bytes) {
  const config::Config& config = loaded.config;
  log::Configure(config.log);
  auto opened = OpenStoreForCommand(config, "gc", /*recover=*/true);
  if (!opened) return kExitFailure;
  store::BlobStore& store = *opened->store;
  const std::uint64_t bytes_before = store.used_bytes();
  const auto blobs_before = store.index().BlobCount();
  // Without --to: down to what store.max_bytes and store.min_free_percent
  // allow (a zero-byte reservation evicts whatever is over the limits).
  ErrorCode error;
  if (to_bytes) {
    if (auto report = store.EvictTo(*to_bytes); !report) error = report.error();
  } else {
    if (auto reserved = store.Reserve(0); !reserved) error = reserved.error();
  }
  if (error) {
    fmt::print(stderr, "hubcache: gc failed: {}\n", error.message());
    return kExitFailure;
  }
  const auto blobs_after = store.index().BlobCount();
  const std::uint64_t before = blobs_before ? *blobs_before : 0;
  const std::uint64_t after = blobs_after ? *blobs_after : 0;
  fmt::print(
      "gc: evicted {} blobs ({} bytes); {} now holds {} bytes in {} blobs (pinned blobs are kept)\n",
      before - std::min(before, after), bytes_before - store.used_bytes(), config.store.cache_dir,
      store.used_bytes(), after);
  return kExitOk;
}

}  // namespace hubcache::daemon
