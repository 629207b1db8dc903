#include "p2p/torrent_files.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "core/errc.h"
#include "core/unique_fd.h"

namespace hubcache::p2p {
namespace {

// Far above the canonical .torrent of any blob (60 KB for 50 GB): a larger
// file is not one of ours.
constexpr std::uint64_t kMaxTorrentFile = 16 << 20;

// write(2) of all of `bytes`, over short writes and EINTR.
Result<void> WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(core::ErrnoError(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace

TorrentFiles::TorrentFiles(std::filesystem::path dir) : dir_(std::move(dir)) {}

std::filesystem::path TorrentFiles::PathOf(const store::Digest& digest) const {
  const std::string hex = digest.Hex();
  return dir_ / hex.substr(0, 2) / (hex + ".torrent");
}

Result<void> TorrentFiles::Put(const store::Digest& digest, std::string_view bytes) {
  const std::filesystem::path path = PathOf(digest);
  std::error_code fs_ec;
  std::filesystem::create_directories(path.parent_path(), fs_ec);
  if (fs_ec) return Fail(core::ErrnoError(fs_ec.value()));
  // A unique temporary name: two Puts of one digest must not share it.
  std::string tmp = path.string() + ".tmp.XXXXXX";
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) return Fail(core::ErrnoError(errno));
  Result<void> written = WriteAll(fd.get(), bytes);
  if (written && ::close(fd.Release()) != 0) written = Fail(core::ErrnoError(errno));
  if (written && ::rename(tmp.c_str(), path.c_str()) != 0) {
    written = Fail(core::ErrnoError(errno));
  }
  if (!written) ::unlink(tmp.c_str());
  return written;
}

Result<std::string> TorrentFiles::Get(const store::Digest& digest) const {
  const std::filesystem::path path = PathOf(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Fail(core::Errc::kNotFound);
    return Fail(core::ErrnoError(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Fail(core::ErrnoError(errno));
  if (static_cast<std::uint64_t>(st.st_size) > kMaxTorrentFile) return Fail(core::Errc::kCorrupt);
  // Files are replaced by rename, never rewritten in place, so the size from
  // fstat is the size of what this descriptor reads.
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(core::ErrnoError(errno));
    }
    if (n == 0) return Fail(core::Errc::kCorrupt);  // shrank: not written by Put
    done += static_cast<std::size_t>(n);
  }
  return out;
}

bool TorrentFiles::Has(const store::Digest& digest) const {
  struct stat st {};
  return ::stat(PathOf(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void TorrentFiles::Remove(const store::Digest& digest) { (void)::unlink(PathOf(digest).c_str()); }

}  // namespace hubcache::p2p
