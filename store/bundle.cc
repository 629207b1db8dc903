#include "store/bundle.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
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
#include "store/errc.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr std::string_view kFormat = "hubcache-bundle";
constexpr int kFormatVersion = 1;
constexpr std::size_t kCopyChunk = 1 << 20;

tl::unexpected<std::string> Err(std::string message) {
  return tl::unexpected<std::string>(std::move(message));
}

fs::path BundleBlobPath(const fs::path& dir, const Digest& digest) {
  return dir / "blobs" / std::string(digest.KindName()) / digest.Hex();
}

// A repo-relative file path that is safe to use under a directory.
bool SafePath(std::string_view path) {
  if (path.empty() || path.size() > 4096 || path.front() == '/' ||
      path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos) {
    return false;
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// Optional manifest fields of a given JSON type: `fallback` when absent,
// nullopt when present with another type (nlohmann's value() would throw).
// REQUIRES: j.is_object().
std::optional<std::string> StringField(const Json& j, const char* key, std::string fallback) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<bool> BoolField(const Json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

// Integers only: no floats, no booleans, nothing beyond int64.
std::optional<std::int64_t> IntField(const Json& j, const char* key, std::int64_t fallback) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (it->is_number_unsigned()) {
    const auto v = it->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(v);
  }
  if (!it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

bool SafeRevision(std::string_view rev) {
  return !rev.empty() && rev.size() <= 256 && rev.find('\0') == std::string_view::npos &&
         (rev == "@" || SafePath(rev));
}

// One repo of a manifest, checked.
struct ManifestFile {
  std::string path;
  FileRecord record;
};
struct ManifestRepo {
  RepoId repo;
  Visibility visibility = Visibility::kRestricted;
  std::int64_t checked_at = 0;
  std::map<std::string, std::string> refs;
  std::map<std::string, std::vector<ManifestFile>> commits;
  struct Doc {
    std::string revision;
    std::string request;
    DocRecord record;
  };
  std::vector<Doc> docs;
};

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

tl::expected<ManifestRepo, std::string> ParseRepo(const Json& j) {
  ManifestRepo repo;
  if (!j.is_object()) return Err("a repo entry is not an object");
  const auto type_name = StringField(j, "type", "");
  const auto type = type_name ? ParseRepoType(*type_name) : std::nullopt;
  if (!type) return Err("a repo has no valid type");
  const auto name = StringField(j, "name", "");
  if (!name) return Err("a repo name is not a string");
  auto spec = ParseRepoSpec(*name, *type);
  if (!spec || !spec->revision.empty()) return Err("repo name '" + *name + "' is not valid");
  repo.repo = spec->repo;
  const std::string label = RepoLabel(repo.repo);
  const auto visibility = StringField(j, "visibility", "");
  if (!visibility) return Err(label + ": visibility is not a string");
  repo.visibility = *visibility == "public" ? Visibility::kPublic : Visibility::kRestricted;
  const auto checked_at = IntField(j, "checked_at", 0);
  if (!checked_at) return Err(label + ": checked_at is not an integer");
  repo.checked_at = *checked_at;
  if (!j.contains("commits") || !j["commits"].is_array()) {
    return Err(label + ": no commits list");
  }
  for (const auto& c : j["commits"]) {
    if (!c.is_object() || !c.contains("commit") || !c["commit"].is_string() ||
        !IsCommitHash(c["commit"].get<std::string>()) || !c.contains("files") ||
        !c["files"].is_array()) {
      return Err(label + ": a commit entry is malformed");
    }
    auto& files = repo.commits[c["commit"].get<std::string>()];
    for (const auto& f : c["files"]) {
      if (!f.is_object() || !f.contains("path") || !f["path"].is_string() ||
          !SafePath(f["path"].get<std::string>())) {
        return Err(label + ": a file entry has no safe path");
      }
      ManifestFile file{.path = f["path"].get<std::string>(), .record = {}};
      const auto exists = BoolField(f, "exists", true);
      if (!exists) return Err(label + ": " + file.path + ": exists is not a boolean");
      file.record.exists = *exists;
      if (file.record.exists) {
        if (!f.contains("digest") || !f["digest"].is_string() || !f.contains("size") ||
            !f["size"].is_number_unsigned()) {
          return Err(label + ": " + file.path + " has no digest or size");
        }
        auto digest = Digest::ParseHex(f["digest"].get<std::string>());
        if (!digest) return Err(label + ": " + file.path + " has a malformed digest");
        file.record.digest = *digest;
        file.record.size = f["size"].get<std::uint64_t>();
        const auto lfs = BoolField(f, "lfs", false);
        if (!lfs) return Err(label + ": " + file.path + ": lfs is not a boolean");
        // LFS files are named by sha256, regular files by git blob id.
        if (*lfs != (digest->kind() == DigestKind::kSha256)) {
          return Err(label + ": " + file.path + ": lfs does not match the digest");
        }
        file.record.lfs = *lfs;
      }
      files.push_back(std::move(file));
    }
  }
  if (j.contains("refs")) {
    if (!j["refs"].is_object()) return Err(label + ": refs is not an object");
    for (const auto& [rev, commit] : j["refs"].items()) {
      if (!SafeRevision(rev) || !commit.is_string() ||
          repo.commits.count(commit.get<std::string>()) == 0) {
        return Err(label + ": ref '" + rev + "' does not name a commit of the bundle");
      }
      repo.refs[rev] = commit.get<std::string>();
    }
  }
  if (j.contains("docs")) {
    if (!j["docs"].is_array()) return Err(label + ": docs is not a list");
    for (const auto& d : j["docs"]) {
      if (!d.is_object() || !d.contains("revision") || !d["revision"].is_string() ||
          !d.contains("request") || !d["request"].is_string() || !d.contains("body") ||
          !d["body"].is_string()) {
        return Err(label + ": a document entry is malformed");
      }
      ManifestRepo::Doc doc{.revision = d["revision"].get<std::string>(),
                            .request = d["request"].get<std::string>(),
                            .record = {}};
      if (!SafeRevision(doc.revision) ||
          (repo.commits.count(doc.revision) == 0 && repo.refs.count(doc.revision) == 0 &&
           doc.revision != "@") ||
          doc.request.find('\0') != std::string::npos) {
        return Err(label + ": a document is stored under an unknown revision");
      }
      doc.record.body = d["body"].get<std::string>();
      const auto stored_at = IntField(d, "stored_at", 0);
      if (!stored_at) return Err(label + ": a document's stored_at is not an integer");
      doc.record.stored_at = *stored_at;
      if (d.contains("headers")) {
        if (!d["headers"].is_array()) return Err(label + ": a document's headers are not a list");
        for (const auto& h : d["headers"]) {
          if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) {
            return Err(label + ": a document's headers are not [name, value] pairs");
          }
          doc.record.headers.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());
        }
      }
      repo.docs.push_back(std::move(doc));
    }
  }
  return repo;
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
  const Json manifest = {{"format", kFormat},
                         {"format_version", kFormatVersion},
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
  const Json manifest = Json::parse(in, nullptr, false);
  if (!manifest.is_object() || StringField(manifest, "format", "") != kFormat) {
    return Err("manifest.json is not a hubcache bundle manifest");
  }
  if (IntField(manifest, "format_version", 0) != kFormatVersion) {
    const auto it = manifest.find("format_version");
    return Err(fmt::format("manifest.json has format_version {}; this hubcache reads {}",
                           it == manifest.end() ? "none" : it->dump().substr(0, 40),
                           kFormatVersion));
  }
  if (!manifest.contains("repos") || !manifest["repos"].is_array()) {
    return Err("manifest.json lists no repos");
  }
  std::vector<ManifestRepo> repos;
  std::map<Digest, std::uint64_t> sizes;
  for (const auto& j : manifest["repos"]) {
    auto repo = ParseRepo(j);
    if (!repo) return Err("manifest.json: " + repo.error());
    for (const auto& [commit, files] : repo->commits) {
      for (const auto& f : files) {
        if (!f.record.digest) continue;
        auto [it, inserted] = sizes.emplace(*f.record.digest, f.record.size);
        if (!inserted && it->second != f.record.size) {
          return Err("manifest.json: blob " + f.record.digest->Hex() +
                                " is listed with two sizes");
        }
      }
    }
    repos.push_back(std::move(*repo));
  }

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
