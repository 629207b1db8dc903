// CacheDir: the cache directory, opened and held exclusively by one process.
//
// Opening creates the directory if it is missing and takes an exclusive
// advisory lock (flock) on `<cache_dir>/hubcache.lock`, into which it writes
// the holder's pid. A second process (or a second CacheDir in the same
// process) opening the same directory fails with core::Errc::kLocked until the
// first one is destroyed or its process exits; the kernel drops the lock when
// the process dies, so a crash never leaves a stale lock behind.
//
// Thread safety: immutable after Open(); all methods are const.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "core/result.h"

namespace hubcache::store {

class CacheDir {
 public:
  // Creates `path` (with parents, mode 0750) if needed and locks it.
  // Errors: core::Errc::kLocked when another holder has it (see HolderPid);
  // a system-category errno when the directory cannot be created or is not a
  // directory (ENOTDIR) or the lock file cannot be opened. On failure nothing
  // is held; directories created on the way stay.
  static Result<std::unique_ptr<CacheDir>> Open(const std::filesystem::path& path);

  // The pid recorded in the lock file of `path`, if the file exists and holds
  // one. Meant for the error message when Open() returned kLocked.
  static std::optional<pid_t> HolderPid(const std::filesystem::path& path);

  CacheDir(const CacheDir&) = delete;
  CacheDir& operator=(const CacheDir&) = delete;
  ~CacheDir();

  // The absolute path of the directory.
  const std::filesystem::path& path() const { return path_; }

  static constexpr const char* kLockFileName = "hubcache.lock";

 private:
  CacheDir(std::filesystem::path path, int lock_fd)
      : path_(std::move(path)), lock_fd_(lock_fd) {}

  std::filesystem::path path_;
  int lock_fd_;
};

}  // namespace hubcache::store
