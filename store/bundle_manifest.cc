#include "store/bundle_manifest.h"

#include <limits>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "store/catalog.h"

namespace hubcache::store {

bool SafeRepoPath(std::string_view path) {
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

namespace {

using Json = nlohmann::ordered_json;

tl::unexpected<std::string> Err(std::string message) {
  return tl::unexpected<std::string>(std::move(message));
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
         (rev == "@" || SafeRepoPath(rev));
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
          !SafeRepoPath(f["path"].get<std::string>())) {
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
          if (!IsDocHeader(h[0].get<std::string>(), h[1].get<std::string>())) {
            return Err(label + ": a document carries a header hubcache does not store (" +
                       h[0].get<std::string>().substr(0, 40) + ")");
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


tl::expected<Manifest, std::string> ParseManifest(std::string_view text) {
  const Json manifest = Json::parse(text, nullptr, false);
  if (!manifest.is_object() || StringField(manifest, "format", "") != kBundleFormat) {
    return Err("manifest.json is not a hubcache bundle manifest");
  }
  if (IntField(manifest, "format_version", 0) != kBundleFormatVersion) {
    const auto it = manifest.find("format_version");
    return Err(fmt::format("manifest.json has format_version {}; this hubcache reads {}",
                           it == manifest.end() ? "none" : it->dump().substr(0, 40),
                           kBundleFormatVersion));
  }
  if (!manifest.contains("repos") || !manifest["repos"].is_array()) {
    return Err("manifest.json lists no repos");
  }
  Manifest out;
  for (const auto& j : manifest["repos"]) {
    auto repo = ParseRepo(j);
    if (!repo) return Err("manifest.json: " + repo.error());
    for (const auto& [commit, files] : repo->commits) {
      for (const auto& f : files) {
        if (!f.record.digest) continue;
        auto [it, inserted] = out.sizes.emplace(*f.record.digest, f.record.size);
        if (!inserted && it->second != f.record.size) {
          return Err("manifest.json: blob " + f.record.digest->Hex() + " is listed with two sizes");
        }
      }
    }
    out.repos.push_back(std::move(*repo));
  }
  return out;
}

}  // namespace hubcache::store
