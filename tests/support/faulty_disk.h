// FaultyDisk: a store::Disk for tests that passes calls to the real
// filesystem and injects, when told to, what real disks do: run out of
// space, fail reads with EIO, write short, or take their time. Knobs may be
// changed while the store runs (they are atomics).
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>

#include "core/errc.h"
#include "store/disk.h"

namespace hubcache::testing {

class FaultyDisk final : public store::Disk {
 public:
  // Writes fail with ENOSPC once this many more bytes were written (-1: never).
  std::atomic<std::int64_t> space_left{-1};
  // Reads fail with EIO while set.
  std::atomic<bool> read_eio{false};
  // Each write call writes at most this many bytes (0: no limit).
  std::atomic<std::size_t> max_write{0};
  // Open, Remove and Space sleep this long first (a slow or busy disk).
  std::atomic<std::int64_t> slow_ms{0};
  // What Space() reports instead of the real filesystem (-1: the real one).
  std::atomic<std::int64_t> fake_total{-1};
  std::atomic<std::int64_t> fake_available{-1};
  // Counters, for assertions.
  std::atomic<std::uint64_t> writes{0};
  std::atomic<std::uint64_t> removes{0};

  Result<UniqueFd> Open(const std::filesystem::path& path, int flags, mode_t mode) override {
    Slow();
    return real().Open(path, flags, mode);
  }
  Result<std::size_t> Write(int fd, const std::uint8_t* data, std::size_t len,
                            std::uint64_t offset) override {
    writes.fetch_add(1);
    if (const std::size_t cap = max_write.load(); cap > 0 && len > cap) len = cap;
    std::int64_t left = space_left.load();
    while (left >= 0) {
      if (left == 0) return Fail(core::ErrnoError(ENOSPC));
      const std::int64_t take = std::min<std::int64_t>(left, static_cast<std::int64_t>(len));
      if (space_left.compare_exchange_weak(left, left - take)) {
        len = static_cast<std::size_t>(take);
        break;
      }
    }
    return real().Write(fd, data, len, offset);
  }
  Result<std::size_t> Read(int fd, std::uint8_t* data, std::size_t len,
                           std::uint64_t offset) override {
    if (read_eio.load()) return Fail(core::ErrnoError(EIO));
    return real().Read(fd, data, len, offset);
  }
  Result<std::uint64_t> FileSize(int fd) override { return real().FileSize(fd); }
  Result<void> Sync(int fd) override { return real().Sync(fd); }
  Result<void> SyncDir(const std::filesystem::path& dir) override { return real().SyncDir(dir); }
  Result<void> Rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return real().Rename(from, to);
  }
  Result<void> Remove(const std::filesystem::path& path) override {
    Slow();
    removes.fetch_add(1);
    return real().Remove(path);
  }
  Result<void> CreateDirectories(const std::filesystem::path& dir) override {
    return real().CreateDirectories(dir);
  }
  Result<store::DiskSpace> Space(const std::filesystem::path& path) override {
    Slow();
    auto space = real().Space(path);
    if (!space) return space;
    if (const auto total = fake_total.load(); total >= 0) {
      space->total_bytes = static_cast<std::uint64_t>(total);
    }
    if (const auto available = fake_available.load(); available >= 0) {
      space->available_bytes = static_cast<std::uint64_t>(available);
    }
    return space;
  }

 private:
  static store::Disk& real() { return store::Disk::Default(); }
  void Slow() const {
    if (const auto ms = slow_ms.load(); ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  }
};

}  // namespace hubcache::testing
