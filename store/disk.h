// Disk: the file operations of the store, behind an interface that tests can
// replace to inject ENOSPC, EIO, short writes and slowness (leveldb's Env is
// the model: google/leveldb:include/leveldb/env.h). The store's blob files,
// staging files and their directories go through it; the LMDB index does not
// (LMDB does its own I/O).
//
// Disk::Default() is the real filesystem (POSIX calls, EINTR retried). Every
// call blocks on the disk: callers on an event loop offload (see
// store/blob_store.h for which store calls are bounded).
//
// Thread safety: implementations must be safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>

#include "core/result.h"
#include "core/unique_fd.h"

namespace hubcache::store {

struct DiskSpace {
  std::uint64_t total_bytes = 0;
  std::uint64_t available_bytes = 0;  // to an unprivileged writer (f_bavail)
};

class Disk {
 public:
  virtual ~Disk() = default;

  // The real filesystem; lives for the whole process.
  static Disk& Default();

  // open(2). Errors: the errno, as a system error_code.
  virtual Result<UniqueFd> Open(const std::filesystem::path& path, int flags, mode_t mode = 0) = 0;
  // One pwrite(2) of up to `len` bytes at `offset`; returns how many were
  // written (possibly fewer: the caller loops). Errors: ENOSPC, EIO...
  virtual Result<std::size_t> Write(int fd, const std::uint8_t* data, std::size_t len,
                                    std::uint64_t offset) = 0;
  // One pread(2); 0 at end of file.
  virtual Result<std::size_t> Read(int fd, std::uint8_t* data, std::size_t len,
                                   std::uint64_t offset) = 0;
  // The size of an open file (fstat).
  virtual Result<std::uint64_t> FileSize(int fd) = 0;
  virtual Result<void> Sync(int fd) = 0;
  // fsync of a directory, so that renames and unlinks in it are durable.
  virtual Result<void> SyncDir(const std::filesystem::path& dir) = 0;
  virtual Result<void> Rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  // unlink(2); a missing file is not an error.
  virtual Result<void> Remove(const std::filesystem::path& path) = 0;
  virtual Result<void> CreateDirectories(const std::filesystem::path& dir) = 0;
  virtual Result<DiskSpace> Space(const std::filesystem::path& path) = 0;
};

// Writes all of `data` through `disk` (looping over short writes).
Result<void> WriteAll(Disk& disk, int fd, const std::uint8_t* data, std::size_t len,
                      std::uint64_t offset);

}  // namespace hubcache::store
