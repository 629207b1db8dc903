#include "store/bundle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/errc.h"
#include "core/log.h"
#include "core/unique_fd.h"
#include "store/bundle_manifest.h"
#include "store/errc.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr std::size_t kCopyChunk = 1 << 20;

tl::unexpected<std::string> Err(std::string message) {
  return tl::unexpected<std::string>(std::move(message));
}

fs::path BundleBlobPath(const fs::path& dir, const Digest& digest) {
  return dir / "blobs" / std::string(digest.KindName()) / digest.Hex();
}

}  // namespace

tl::expected<bool, std::string> CopyBlobFile(const fs::path& from, const fs::path& to) {
  // Whatever is at `to` already is not trusted (a bundle directory may have
  // been tampered with): it is replaced by the store's verified copy, unless
  // it is that very file (a hard link).
  std::error_code ec;
  if (fs::exists(to, ec) && fs::equivalent(from, to, ec) && !ec) return false;
  fs::create_directories(to.parent_path(), ec);
  const fs::path part = to.string() + ".part";
  fs::remove(part, ec);
  if (!fs::copy_file(from, part, fs::copy_options::overwrite_existing, ec)) {
    return Err(fmt::format("cannot copy {} to {}: {}", from.string(), part.string(),
                                      ec.message()));
  }
  fs::rename(part, to, ec);
  if (ec) return Err(fmt::format("cannot rename {}: {}", part.string(), ec.message()));
  return true;
}

namespace {

Json FileJson(std::string_view path, const FileRecord& file) {
  Json out = {{"path", path}, {"exists", file.exists}};
  if (file.exists && file.digest) {
    out["lfs"] = file.lfs;
    out["digest"] = file.digest->Hex();
    out["size"] = file.size;
  }
  return out;
}

}  // namespace

tl::expected<bool, std::string> AddBlobFromFile(BlobStore& store, const Digest& digest,
                                                std::uint64_t size, const fs::path& path) {
  auto present = store.index().GetBlob(digest);
  if (present && *present) {
    // Verified when it was stored; the size claimed for it must agree.
    if ((*present)->size != size) {
      return Err(fmt::format("{}: the store holds it with {} bytes, the manifest says {}",
                             digest.Hex(), (*present)->size, size));
    }
    return false;
  }
  // Not through a symlink (the bytes must come from where they are listed),
  // and without blocking on a FIFO before fstat can refuse it.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd && errno == ELOOP) return Err(path.string() + " is a symlink, not a regular file");
  if (!fd) return Err(fmt::format("cannot open {}: {}", path.string(),
                                             std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Err(path.string() + " is not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) != size) {
    return Err(fmt::format("{} has {} bytes, the manifest says {}", path.string(),
                                      st.st_size, size));
  }
  auto writer = store.BeginWrite(digest, size);
  if (!writer) {
    if (writer.error() == core::Errc::kAlreadyExists) return false;
    return Err(fmt::format("cannot store {}: {}", digest.Hex(),
                                      writer.error().message()));
  }
  std::vector<std::uint8_t> buffer(std::min<std::uint64_t>(kCopyChunk, std::max<std::uint64_t>(size, 1)));
  std::uint64_t offset = 0;
  while (offset < size) {
    const ssize_t n = ::pread(fd.get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Err(fmt::format("{} ended after {} of {} bytes", path.string(), offset,
                                        size));
    }
    auto written = (*writer)->WriteAt(offset, {buffer.data(), static_cast<std::size_t>(n)});
    if (!written) {
      return Err(fmt::format("cannot store {}: {}", digest.Hex(),
                                        written.error().message()));
    }
    offset += static_cast<std::uint64_t>(n);
  }
  auto committed = (*writer)->Commit();
  if (!committed) {
    if (committed.error() == Errc::kDigestMismatch) {
      return Err(fmt::format("{} does not hash to {} (its bytes hash to {})",
                                        path.string(), digest.Hex(),
                                        (*writer)->actual_digest()
                                            ? (*writer)->actual_digest()->Hex()
                                            : std::string("?")));
    }
    return Err(fmt::format("cannot store {}: {}", digest.Hex(),
                                      committed.error().message()));
  }
  return true;
}

tl::expected<std::map<RepoId, Selection>, std::string> SelectForExport(
    const Index& index, const std::vector<RepoSpec>& specs) {
  auto summaries = Summarize(index);
  if (!summaries) return Err("cannot read the index: " + summaries.error().message());

  // Specs of one repo merge into one manifest entry.
  std::map<RepoId, Selection> wanted;
  for (const RepoSpec& spec : specs) {
    const std::string label = RepoLabel(spec.repo);
    auto summary = std::find_if(summaries->begin(), summaries->end(),
                                [&](const auto& s) { return s.repo == spec.repo; });
    if (summary == summaries->end()) return Err(label + " is not in the cache");
    auto& refs = wanted[spec.repo].refs;
    auto& commits = wanted[spec.repo].commits;
    if (spec.revision.empty()) {
      for (const auto& [rev, commit] : summary->refs) refs[rev] = commit;
      if (summary->refs.empty()) {
        for (const auto& c : summary->commits) commits.insert(c.commit);
      }
    } else if (IsCommitHash(spec.revision)) {
      commits.insert(spec.revision);
    } else {
      auto commit = ResolveLocally(index, spec.repo, spec.revision);
      if (!commit || !*commit) {
        return Err(label + "@" + spec.revision + " is not in the cache");
      }
      refs[spec.revision] = **commit;
    }
    for (const auto& [rev, commit] : refs) commits.insert(commit);
  }

  return wanted;
}

tl::expected<ExportReport, std::string> ExportBundle(const Index& index,
                                                     const fs::path& cache_dir,
                                                     const std::vector<RepoSpec>& specs,
                                                     const fs::path& out) {
  ExportReport report;
  Json repos = Json::array();
  std::map<Digest, std::uint64_t> blobs;
  auto selected = SelectForExport(index, specs);
  if (!selected) return Err(selected.error());
  const auto& wanted = *selected;

  for (const auto& [repo, what] : wanted) {
    const auto& refs = what.refs;
    const auto& commits = what.commits;
    const std::string label = RepoLabel(repo);
    auto access = index.GetAccess(repo);
    const bool is_public =
        access && *access && (*access)->visibility == Visibility::kPublic;
    Json entry = {{"type", RepoTypeName(repo.type)},
                  {"name", repo.name},
                  {"visibility", is_public ? "public" : "restricted"},
                  {"checked_at", access && *access ? (*access)->checked_at : 0},
                  {"refs", Json::object()},
                  {"commits", Json::array()},
                  {"docs", Json::array()}};
    for (const auto& [rev, commit] : refs) entry["refs"][rev] = commit;
    std::set<std::string> doc_revisions(commits.begin(), commits.end());
    for (const auto& [rev, commit] : refs) doc_revisions.insert(rev);
    // And the repo's own documents (revision "@"): above all the Hub's refs
    // listing, by which an offline hubcache resolves every branch and tag.
    doc_revisions.insert("@");
    for (const std::string& commit : commits) {
      Json files = Json::array();
      std::string missing;
      auto scan = index.ForEachFile(repo, commit, [&](std::string_view path, const FileRecord& f) {
        files.push_back(FileJson(path, f));
        if (!f.exists || !f.digest) return true;
        auto blob = index.GetBlob(*f.digest);
        if (!blob || !*blob) {
          missing = std::string(path);
          return false;
        }
        blobs[*f.digest] = f.size;
        report.files += 1;
        return true;
      });
      if (!scan) return Err("cannot read the index: " + scan.error().message());
      if (!missing.empty()) {
        return Err(fmt::format("{}@{}: {} is not cached; prefetch the revision first",
                                          label, commit, missing));
      }
      if (files.empty()) {
        return Err(fmt::format("{}@{} has no cached files", label, commit));
      }
      entry["commits"].push_back({{"commit", commit}, {"files", std::move(files)}});
      report.commits += 1;
    }
    for (const std::string& rev : doc_revisions) {
      auto docs = index.ForEachDoc(repo, rev, [&](std::string_view request, const DocRecord& d) {
        Json headers = Json::array();
        for (const auto& [name, value] : d.headers) headers.push_back({name, value});
        entry["docs"].push_back({{"revision", rev},
                                 {"request", request},
                                 {"headers", std::move(headers)},
                                 {"stored_at", d.stored_at},
                                 {"body", d.body}});
        return true;
      });
      if (!docs) return Err("cannot read the index: " + docs.error().message());
    }
    repos.push_back(std::move(entry));
    report.repos += 1;
  }

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Err(fmt::format("cannot create {}: {}", out.string(), ec.message()));
  // A manifest from an earlier run goes first: a bundle with a manifest is complete.
  fs::remove(out / "manifest.json", ec);
  Json blob_list = Json::array();
  for (const auto& [digest, size] : blobs) {
    auto copied = CopyBlobFile(BlobStore::BlobPathIn(cache_dir, digest), BundleBlobPath(out, digest));
    if (!copied) return Err(copied.error());
    (*copied ? report.blobs_copied : report.blobs_present) += 1;
    report.bytes += size;
    blob_list.push_back({{"digest", digest.Hex()}, {"size", size}});
  }
  const Json manifest = {{"format", kBundleFormat},
                         {"format_version", kBundleFormatVersion},
                         {"created_at", core::UnixSeconds()},
                         {"repos", std::move(repos)},
                         {"blobs", std::move(blob_list)}};
  const fs::path tmp = out / "manifest.json.tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file << manifest.dump(1) << '\n';
    if (!file.flush()) return Err("cannot write " + tmp.string());
  }
  fs::rename(tmp, out / "manifest.json", ec);
  if (ec) return Err(fmt::format("cannot write the manifest: {}", ec.message()));
  return report;
}

tl::expected<ImportReport, std::string> ImportBundle(
    BlobStore& store, const fs::path& dir, bool mark_public,
    const std::function<void(const std::string&, std::uint64_t)>& on_blob) {
  std::ifstream in(dir / "manifest.json", std::ios::binary);
  if (!in) return Err((dir / "manifest.json").string() + " cannot be read (no bundle here?)");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Err((dir / "manifest.json").string() + " cannot be read");
  auto manifest = ParseManifest(text);
  if (!manifest) return Err(manifest.error());
  const std::vector<ManifestRepo>& repos = manifest->repos;
  const std::map<Digest, std::uint64_t>& sizes = manifest->sizes;

  // 1. Every blob, verified as it is written; nothing is indexed yet.
  ImportReport report;
  std::set<Digest> bad;
  for (const auto& [digest, size] : sizes) {
    if (on_blob) on_blob(digest.Hex(), size);
    auto added = AddBlobFromFile(store, digest, size, BundleBlobPath(dir, digest));
    if (!added) {
      bad.insert(digest);
      report.problems.push_back(added.error());
      log::Warn(log::Module::kStore, "import_blob_rejected",
                {{"digest", digest.Hex()}, {"error", added.error()}});
      continue;
    }
    if (*added) {
      report.blobs_added += 1;
      report.bytes_added += size;
    } else {
      report.blobs_present += 1;
    }
  }

  // 2. Each repo whose blobs are all in, with its refs and documents.
  Index& index = store.index();
  for (const ManifestRepo& repo : repos) {
    ImportReport::Repo r{.label = RepoLabel(repo.repo),
                         .imported = false,
                         .commits = 0,
                         .files = 0,
                         .refs = 0,
                         .restricted = repo.visibility != Visibility::kPublic,
                         .problem = {}};
    for (const auto& [commit, files] : repo.commits) {
      for (const auto& f : files) {
        if (f.record.digest && bad.count(*f.record.digest) > 0 && r.problem.empty()) {
          r.problem = fmt::format("{} (at {}) failed verification", f.path, commit.substr(0, 12));
        }
      }
    }
    if (!r.problem.empty()) {
      report.repos.push_back(std::move(r));
      continue;
    }
    auto fail = [&](const ErrorCode& ec) {
      r.problem = "cannot write the index: " + ec.message();
    };
    for (const auto& [commit, files] : repo.commits) {
      for (const auto& f : files) {
        if (auto put = index.PutFile(repo.repo, commit, f.path, f.record); !put) fail(put.error());
      }
      r.commits += 1;
      r.files += files.size();
    }
    for (const auto& doc : repo.docs) {
      if (auto put = index.PutDoc(repo.repo, doc.revision, doc.request, doc.record); !put) {
        fail(put.error());
      }
    }
    for (const auto& [rev, commit] : repo.refs) {
      if (auto put = index.PutRef(repo.repo, rev, {.commit = commit, .fetched_at = core::UnixSeconds()}); !put) {
        fail(put.error());
      }
      r.refs += 1;
    }
    const bool serve_to_all = repo.visibility == Visibility::kPublic || mark_public;
    // The public fact keeps its age, so that online it is checked again when
    // it would have been; a time from the future would make it last longer.
    const std::int64_t now = core::UnixSeconds();
    if (auto put = index.PutAccess(repo.repo, {.visibility = serve_to_all ? Visibility::kPublic
                                                                           : Visibility::kRestricted,
                                               .checked_at = repo.visibility == Visibility::kPublic
                                                                 ? std::clamp<std::int64_t>(
                                                                       repo.checked_at, 0, now)
                                                                 : now});
        !put) {
      fail(put.error());
    }
    r.imported = r.problem.empty();
    report.repos.push_back(std::move(r));
  }
  log::Info(log::Module::kStore, "bundle_imported",
            {{"dir", dir.string()},
             {"repos", report.repos.size()},
             {"blobs_added", report.blobs_added},
             {"rejected", report.problems.size()}});
  return report;
}

}  // namespace hubcache::store
