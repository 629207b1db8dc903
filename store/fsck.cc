#include "store/fsck.h"

#include "store/blob_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/errc.h"
#include "core/log.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;

// Hashes the file at `path` as content of `kind` through `disk`; nullopt if
// unreadable.
std::optional<Digest> HashFile(Disk& disk, const fs::path& path, DigestKind kind,
                               std::uint64_t& bytes) {
  auto fd = disk.Open(path, O_RDONLY);
  if (!fd) return std::nullopt;
  auto size = disk.FileSize(fd->get());
  if (!size) return std::nullopt;
  Hasher hasher(kind, *size);
  std::vector<std::uint8_t> buffer(1 << 20);
  std::uint64_t offset = 0;
  for (;;) {
    auto n = disk.Read(fd->get(), buffer.data(), buffer.size(), offset);
    if (!n) return std::nullopt;
    if (*n == 0) break;
    hasher.Update({buffer.data(), *n});
    offset += *n;
  }
  bytes += hasher.bytes_hashed();
  if (hasher.bytes_hashed() != *size) return std::nullopt;
  return hasher.Finish();
}

class Checker {
 public:
  Checker(BlobStore& store, FsckMode mode) : store_(store), mode_(mode) {}

  Result<FsckReport> Run() {
    CleanStaging();
    if (auto r = CheckIndexed(); !r) return Fail(r.error());
    ScanFiles();
    return report_;
  }

 private:
  bool fix() const { return mode_ != FsckMode::kVerify; }

  void Problem(std::string text) {
    log::Warn(log::Module::kStore, "fsck_problem", {{"problem", text}});
    report_.problems.push_back(std::move(text));
  }

  void CleanStaging() {
    if (!fix()) return;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(store_.root() / "staging", ec)) {
      if (fs::remove(entry.path(), ec)) ++report_.staging_removed;
    }
  }

  // Index → files.
  Result<void> CheckIndexed() {
    std::vector<std::pair<Digest, BlobRecord>> entries;
    auto scan = store_.index().ForEachBlob([&](const Digest& d, const BlobRecord& r) {
      entries.emplace_back(d, r);
      return true;
    });
    if (!scan) return scan;
    for (const auto& [digest, record] : entries) {
      ++report_.blobs_checked;
      indexed_.insert(digest);
      const fs::path path = store_.BlobPath(digest);
      struct stat st {};
      std::string problem;
      if (::stat(path.c_str(), &st) != 0) {
        ++report_.missing;
        problem = fmt::format("{}:{}: indexed but its file is missing", digest.KindName(),
                              digest.Hex());
      } else if (static_cast<std::uint64_t>(st.st_size) != record.size) {
        ++report_.wrong_size;
        problem = fmt::format("{}:{}: file has {} bytes, index says {}", digest.KindName(),
                              digest.Hex(), st.st_size, record.size);
      } else if (mode_ != FsckMode::kRecover) {
        auto actual = HashFile(store_.disk(), path, digest.kind(), report_.bytes_hashed);
        if (!actual || *actual != digest) {
          ++report_.corrupt;
          problem = fmt::format("{}:{}: content hashes to {}", digest.KindName(), digest.Hex(),
                                actual ? actual->Hex() : std::string("(unreadable)"));
        }
      }
      if (problem.empty()) continue;
      Problem(problem);
      if (fix()) {
        // Index entry first, then the file: a crash in between leaves an
        // orphan, which the next open handles.
        if (auto d = store_.blob_index().DeleteBlob(digest); !d) return Fail(d.error());
        std::error_code ec;
        fs::remove(path, ec);
        report_.repaired = true;
      }
    }
    return {};
  }

  // Files → index.
  void ScanFiles() {
    for (DigestKind kind : {DigestKind::kSha256, DigestKind::kGitSha1}) {
      const fs::path dir = store_.root() / "blobs" / (kind == DigestKind::kSha256 ? "sha256" : "sha1");
      std::error_code ec;
      for (auto it = fs::recursive_directory_iterator(dir, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        const fs::path path = it->path();
        auto digest = Digest::Parse(kind, path.filename().string());
        if (digest && indexed_.count(*digest) && path == store_.BlobPath(*digest)) continue;
        if (digest && path == store_.BlobPath(*digest) && !indexed_.count(*digest)) {
          auto actual = HashFile(store_.disk(), path, kind, report_.bytes_hashed);
          if (actual && *actual == *digest) {
            if (fix()) {
              std::error_code size_ec;
              const auto size = fs::file_size(path, size_ec);
              const std::int64_t now = core::UnixSeconds();
              if (!size_ec && store_.blob_index().PutBlob(*digest, BlobRecord{size, now, now, 0})) {
                ++report_.adopted;
                log::Info(log::Module::kStore, "fsck_adopted", {{"digest", digest->Hex()}});
                continue;
              }
            } else {
              ++report_.interrupted;
              continue;
            }
          }
        }
        ++report_.orphans;
        Problem(fmt::format("{}: file without a valid index entry", path.string()));
        if (fix()) {
          fs::remove(path, ec);
          report_.repaired = true;
        }
      }
    }
  }

  BlobStore& store_;
  const FsckMode mode_;
  FsckReport report_;
  std::set<Digest> indexed_;
};

}  // namespace

Result<FsckReport> Fsck(BlobStore& store, FsckMode mode) { return Checker(store, mode).Run(); }

}  // namespace hubcache::store
