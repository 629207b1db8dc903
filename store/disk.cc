#include "store/disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "core/errc.h"

namespace hubcache::store {
namespace {

class PosixDisk final : public Disk {
 public:
  Result<UniqueFd> Open(const std::filesystem::path& path, int flags, mode_t mode) override {
    for (;;) {
      UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
      if (fd) return fd;
      if (errno != EINTR) return Fail(core::ErrnoError(errno));
    }
  }

  Result<std::size_t> Write(int fd, const std::uint8_t* data, std::size_t len,
                            std::uint64_t offset) override {
    for (;;) {
      const ssize_t n = ::pwrite(fd, data, len, static_cast<off_t>(offset));
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return Fail(core::ErrnoError(errno));
    }
  }

  Result<std::size_t> Read(int fd, std::uint8_t* data, std::size_t len,
                           std::uint64_t offset) override {
    for (;;) {
      const ssize_t n = ::pread(fd, data, len, static_cast<off_t>(offset));
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return Fail(core::ErrnoError(errno));
    }
  }

  Result<std::uint64_t> FileSize(int fd) override {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Fail(core::ErrnoError(errno));
    return static_cast<std::uint64_t>(st.st_size);
  }

  Result<void> Sync(int fd) override {
    if (::fsync(fd) != 0) return Fail(core::ErrnoError(errno));
    return {};
  }

  Result<void> SyncDir(const std::filesystem::path& dir) override {
    auto fd = Open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (!fd) return Fail(fd.error());
    return Sync(fd->get());
  }

  Result<void> Rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Fail(core::ErrnoError(errno));
    return {};
  }

  Result<void> Remove(const std::filesystem::path& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Fail(core::ErrnoError(errno));
    return {};
  }

  Result<void> CreateDirectories(const std::filesystem::path& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Fail(core::ErrnoError(ec.value()));
    return {};
  }

  Result<DiskSpace> Space(const std::filesystem::path& path) override {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) return Fail(core::ErrnoError(errno));
    return DiskSpace{static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize,
                     static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize};
  }
};

}  // namespace

Disk& Disk::Default() {
  static PosixDisk disk;
  return disk;
}

Result<void> WriteAll(Disk& disk, int fd, const std::uint8_t* data, std::size_t len,
                      std::uint64_t offset) {
  while (len > 0) {
    auto n = disk.Write(fd, data, len, offset);
    if (!n) return Fail(n.error());
    if (*n == 0) return Fail(core::ErrnoError(EIO));  // no progress: never spin
    data += *n;
    len -= *n;
    offset += *n;
  }
  return {};
}

}  // namespace hubcache::store
