#include "store/cache_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>
#include <system_error>

#include "core/errc.h"

namespace hubcache::store {

Result<std::unique_ptr<CacheDir>> CacheDir::Open(
    const std::filesystem::path& path) {
  std::error_code fs_ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, fs_ec);
  if (fs_ec) return Fail(core::ErrnoError(fs_ec.value()));
  std::filesystem::create_directories(absolute, fs_ec);
  if (fs_ec) return Fail(core::ErrnoError(fs_ec.value()));
  if (!std::filesystem::is_directory(absolute, fs_ec)) {
    return Fail(core::ErrnoError(ENOTDIR));
  }
  // create_directories uses 0777 & ~umask; blobs of private repos live
  // here, so keep the tree closed to other users.
  std::filesystem::permissions(absolute, std::filesystem::perms::others_all,
                               std::filesystem::perm_options::remove, fs_ec);

  const std::filesystem::path lock_path = absolute / kLockFileName;
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Fail(core::ErrnoError(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return Fail(core::Errc::kLocked);
    return Fail(core::ErrnoError(err));
  }
  // Record who holds it, for the message a second instance prints.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) !=
          static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd);
    return Fail(core::ErrnoError(err));
  }
  return std::unique_ptr<CacheDir>(new CacheDir(std::move(absolute), fd));
}

std::optional<pid_t> CacheDir::HolderPid(const std::filesystem::path& path) {
  const std::filesystem::path lock_path = path / kLockFileName;
  int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[32];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n <= 0) return std::nullopt;
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(buf, buf + n, pid);
  if (ec != std::errc() || pid <= 0) return std::nullopt;
  return pid;
}

CacheDir::~CacheDir() {
  // Closing the descriptor releases the flock. The file stays: removing it
  // would race with a process that opened it and is about to lock it.
  ::close(lock_fd_);
}

}  // namespace hubcache::store
