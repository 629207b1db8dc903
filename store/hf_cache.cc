#include "store/hf_cache.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/log.h"
#include "store/bundle.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr std::string_view kCacheDirTag =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by hubcache export.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n";

// The directories of a repo folder.
constexpr std::array<std::string_view, 5> kRepoDirs = {"blobs", "snapshots", "refs", ".no_exist",
                                                       "trees"};

tl::unexpected<std::string> Err(std::string message) {
  return tl::unexpected<std::string>(std::move(message));
}

// The git blob id of the LFS pointer file git-lfs writes for this content
// (what the Hub reports as the `oid` of an LFS file).
std::string LfsPointerBlobId(const Digest& sha256, std::uint64_t size) {
  const std::string pointer = fmt::format(
      "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n", sha256.Hex(), size);
  return HashBytes(DigestKind::kGitSha1, pointer).Hex();
}

tl::expected<void, std::string> WriteText(const fs::path& path, std::string_view text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) return Err("cannot write " + tmp.string());
  }
  fs::rename(tmp, path, ec);
  if (ec) return Err(fmt::format("cannot write {}: {}", path.string(), ec.message()));
  return {};
}

std::optional<RepoId> RepoFromFolder(std::string_view folder) {
  const std::size_t sep = folder.find("--");
  if (sep == std::string_view::npos) return std::nullopt;
  auto type = ParseRepoType(folder.substr(0, sep));
  if (!type) return std::nullopt;
  std::string name(folder.substr(sep + 2));
  for (std::size_t at = name.find("--"); at != std::string::npos; at = name.find("--", at + 1)) {
    name.replace(at, 2, "/");
  }
  auto spec = ParseRepoSpec(name, *type);
  if (!spec || !spec->revision.empty()) return std::nullopt;
  return spec->repo;
}

// The trees/<commit>.json entries: path → (lfs sha256 or "").
std::map<std::string, std::string> ReadTreeLfs(const fs::path& file) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  if (fs::symlink_status(file, ec).type() != fs::file_type::regular) return out;  // not a FIFO
  std::ifstream in(file, std::ios::binary);
  if (!in) return out;
  const Json tree = Json::parse(in, nullptr, false);
  if (!tree.is_object() || !tree.contains("files") || !tree["files"].is_object()) return out;
  for (const auto& [path, entry] : tree["files"].items()) {
    if (entry.is_object() && entry.contains("lfs_sha256") && entry["lfs_sha256"].is_string()) {
      out[path] = entry["lfs_sha256"].get<std::string>();
    }
  }
  return out;
}

// The digest of a regular (non-symlink) snapshot file, by hashing it.
std::optional<Digest> HashFile(const fs::path& path, DigestKind kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  Hasher hasher(kind, size);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hasher.Update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
  }
  return hasher.Finish();
}

}  // namespace

std::string HfCacheFolder(const RepoId& repo) {
  std::string name = repo.name;
  for (std::size_t at = name.find('/'); at != std::string::npos; at = name.find('/', at)) {
    name.replace(at, 1, "--");
  }
  return fmt::format("{}s--{}", RepoTypeName(repo.type), name);
}

tl::expected<HfExportReport, std::string> ExportHfCache(const Index& index,
                                                        const fs::path& cache_dir,
                                                        const std::vector<RepoSpec>& specs,
                                                        const fs::path& out) {
  auto selected = SelectForExport(index, specs);
  if (!selected) return Err(selected.error());
  HfExportReport report;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Err(fmt::format("cannot create {}: {}", out.string(), ec.message()));
  if (!fs::exists(out / "CACHEDIR.TAG", ec)) {
    if (auto w = WriteText(out / "CACHEDIR.TAG", kCacheDirTag); !w) return Err(w.error());
  }
  for (const auto& [repo, selection] : *selected) {
    const std::string label = RepoLabel(repo);
    const fs::path root = out / HfCacheFolder(repo);
    for (const std::string& commit : selection.commits) {
      struct File {
        std::string path;
        FileRecord record;
      };
      std::vector<File> files;
      auto scan = index.ForEachFile(repo, commit, [&](std::string_view path, const FileRecord& f) {
        files.push_back({std::string(path), f});
        return true;
      });
      if (!scan) return Err("cannot read the index: " + scan.error().message());
      Json tree = {{"format_version", 1}, {"files", Json::object()}};
      for (const File& f : files) {
        const fs::path snapshot = root / "snapshots" / commit / f.path;
        if (!f.record.exists || !f.record.digest) {
          if (auto w = WriteText(root / ".no_exist" / commit / f.path, ""); !w) {
            return Err(w.error());
          }
          continue;
        }
        const Digest& digest = *f.record.digest;
        auto blob = index.GetBlob(digest);
        if (!blob || !*blob) {
          return Err(fmt::format("{}@{}: {} is not cached; prefetch the revision first", label,
                                 commit, f.path));
        }
        const std::string etag = digest.Hex();
        auto copied = CopyBlobFile(BlobStore::BlobPathIn(cache_dir, digest), root / "blobs" / etag);
        if (!copied) return Err(copied.error());
        if (*copied) report.blobs_copied += 1;
        report.bytes += f.record.size;
        // ../../blobs/<etag> from snapshots/<commit>/, one more ../ per folder.
        std::string target;
        const auto depth = std::count(f.path.begin(), f.path.end(), '/');
        for (long i = 0; i < 2 + depth; ++i) target += "../";
        target += "blobs/" + etag;
        fs::create_directories(snapshot.parent_path(), ec);
        fs::remove(snapshot, ec);
        fs::create_symlink(target, snapshot, ec);
        if (ec) {
          return Err(fmt::format("cannot link {}: {}", snapshot.string(), ec.message()));
        }
        Json entry = {{"size", f.record.size}};
        if (f.record.lfs && digest.kind() == DigestKind::kSha256) {
          entry["blob_id"] = LfsPointerBlobId(digest, f.record.size);
          entry["lfs_sha256"] = etag;
          entry["lfs_size"] = f.record.size;
        } else {
          entry["blob_id"] = etag;
        }
        tree["files"][f.path] = std::move(entry);
        report.files += 1;
      }
      if (auto w = WriteText(root / "trees" / (commit + ".json"), tree.dump()); !w) {
        return Err(w.error());
      }
      report.commits += 1;
    }
    for (const auto& [rev, commit] : selection.refs) {
      if (auto w = WriteText(root / "refs" / rev, commit); !w) return Err(w.error());
    }
    report.repos += 1;
  }
  return report;
}

tl::expected<HfImportReport, std::string> ImportHfCache(BlobStore& store, const fs::path& dir,
                                                        bool mark_public) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Err(dir.string() + " is not a directory");
  Index& index = store.index();
  HfImportReport report;
  const std::int64_t now = core::UnixSeconds();
  for (const auto& folder : fs::directory_iterator(dir, ec)) {
    const std::string name = folder.path().filename().string();
    // The non-throwing checks: a link that loops is neither.
    std::error_code type_ec;
    if (!folder.is_directory(type_ec) || name.starts_with(".") || name == "CACHEDIR.TAG") {
      continue;
    }
    const auto repo = RepoFromFolder(name);
    if (!repo) {
      report.problems.push_back(name + ": not a repo folder (type--org--name); skipped");
      continue;
    }
    // Only what is inside the folder is read: a directory that is a symlink
    // could lead anywhere on this machine, and what it reaches would be
    // served as the repo's files.
    const fs::path root = folder.path();
    if (folder.is_symlink() || std::any_of(kRepoDirs.begin(), kRepoDirs.end(), [&](auto sub) {
          return fs::is_symlink(root / sub, ec);
        })) {
      report.problems.push_back(name +
                                ": the folder or one of its directories is a symlink; skipped");
      continue;
    }
    const fs::path blobs = fs::weakly_canonical(root / "blobs", ec);
    std::set<std::string> imported_commits;
    for (const auto& snap : fs::directory_iterator(root / "snapshots", ec)) {
      const std::string commit = snap.path().filename().string();
      if (!snap.is_directory(type_ec) || !IsCommitHash(commit)) continue;
      if (snap.is_symlink()) {
        report.problems.push_back(
            fmt::format("{}: snapshots/{} is a symlink; skipped", name, commit));
        continue;
      }
      const auto lfs = ReadTreeLfs(root / "trees" / (commit + ".json"));
      std::size_t good = 0;
      for (auto it = fs::recursive_directory_iterator(snap.path(), ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_directory(type_ec)) continue;
        // Lexically: a symlink's own path, not where it points.
        const std::string path = it->path().lexically_relative(snap.path()).generic_string();
        const fs::path real = fs::weakly_canonical(it->path(), ec);
        std::optional<Digest> digest;
        bool is_lfs = false;
        if (it->is_symlink()) {
          if (real.parent_path() != blobs || !fs::is_regular_file(real, ec)) {
            report.problems.push_back(
                fmt::format("{}: {} does not point to a file in blobs/; skipped", name, path));
            continue;
          }
          auto parsed = Digest::ParseHex(real.filename().string());
          if (parsed) digest = *parsed;
          is_lfs = parsed && parsed->kind() == DigestKind::kSha256;
        } else if (!it->is_regular_file()) {
          // A FIFO would block the reader; devices and sockets are no files.
          report.problems.push_back(fmt::format("{}: {} is not a regular file; skipped", name,
                                                path));
          continue;
        } else if (auto it_lfs = lfs.find(path); it_lfs != lfs.end()) {
          auto parsed = Digest::Parse(DigestKind::kSha256, it_lfs->second);
          if (parsed) digest = *parsed;
          is_lfs = true;
        } else {
          digest = HashFile(real, DigestKind::kGitSha1);
        }
        std::uint64_t size = fs::file_size(real, ec);
        if (!digest || ec) {
          report.problems.push_back(fmt::format("{}: {} has no usable blob name; skipped", name,
                                                path));
          continue;
        }
        auto added = AddBlobFromFile(store, *digest, size, real);
        if (!added) {
          report.problems.push_back(fmt::format("{}: {}: {}; skipped", name, path, added.error()));
          continue;
        }
        if (*added) {
          report.blobs_added += 1;
          report.bytes_added += size;
        }
        auto put = index.PutFile(*repo, commit, path,
                                 {.exists = true, .lfs = is_lfs, .digest = *digest, .size = size});
        if (!put) return Err("cannot write the index: " + put.error().message());
        report.files += 1;
        ++good;
      }
      if (good == 0) continue;
      imported_commits.insert(commit);
      report.commits += 1;
      // Paths known not to exist at this commit.
      const fs::path no_exist = root / ".no_exist" / commit;
      for (auto it = fs::recursive_directory_iterator(no_exist, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_symlink() || !it->is_regular_file()) continue;
        const std::string path = it->path().lexically_relative(no_exist).generic_string();
        (void)index.PutFile(*repo, commit, path, {.exists = false, .lfs = false, .digest = {}, .size = 0});
      }
      ec.clear();
    }
    ec.clear();
    for (auto it = fs::recursive_directory_iterator(root / "refs", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_symlink() || !it->is_regular_file()) continue;
      const std::string rev = it->path().lexically_relative(root / "refs").generic_string();
      std::ifstream in(it->path(), std::ios::binary);
      std::string commit;
      std::getline(in, commit);
      while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
      if (imported_commits.count(commit) == 0) continue;
      if (index.PutRef(*repo, rev, {.commit = commit, .fetched_at = now})) report.refs += 1;
    }
    ec.clear();
    if (imported_commits.empty()) continue;
    if (mark_public) {
      (void)index.PutAccess(*repo, {.visibility = Visibility::kPublic, .checked_at = now});
    }
    report.repos += 1;
  }
  log::Info(log::Module::kStore, "hf_cache_imported",
            {{"dir", dir.string()},
             {"repos", report.repos},
             {"files", report.files},
             {"skipped", report.problems.size()}});
  return report;
}

}  // namespace hubcache::store
