// The manifest of an air-gap bundle (store/bundle.h): its format, and the
// reader that checks everything in it before an import touches the store.
// No file system and no index here, so that it can be fuzzed
// (tests/fuzz/bundle_manifest_fuzz.cc).
//
// A bundle comes from another site, maybe through hands that cannot be
// trusted: the reader accepts only what hubcache itself writes. Repo names
// and revisions as the Hub spells them, commit hashes, repo-relative file
// paths without `..`, absolute parts or NULs, digests of the right kind
// (sha256 for LFS files, git blob ids otherwise), one size per blob,
// refs and documents only under revisions of the bundle, and document
// headers only of the kinds the proxy stores (IsDocHeader).
//
// Thread safety: functions only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "store/digest.h"
#include "store/index.h"
#include "store/repo_id.h"

namespace hubcache::store {

inline constexpr std::string_view kBundleFormat = "hubcache-bundle";
inline constexpr int kBundleFormatVersion = 1;

struct ManifestFile {
  std::string path;
  FileRecord record;
};

struct ManifestRepo {
  RepoId repo;
  Visibility visibility = Visibility::kRestricted;
  std::int64_t checked_at = 0;
  std::map<std::string, std::string> refs;                     // revision → commit
  std::map<std::string, std::vector<ManifestFile>> commits;    // commit → files
  struct Doc {
    std::string revision;  // a commit or ref of this repo, or "@" (the repo's own)
    std::string request;
    DocRecord record;
  };
  std::vector<Doc> docs;
};

struct Manifest {
  std::vector<ManifestRepo> repos;
  std::map<Digest, std::uint64_t> sizes;  // every blob the files name, with its size
};

// Parses and checks a manifest. Errors (as a message naming the repo and
// entry at fault): not JSON, another format or version, anything above.
tl::expected<Manifest, std::string> ParseManifest(std::string_view text);

// A repo-relative file path that is safe to use under a directory: not
// empty, relative, no empty, `.` or `..` parts, no NUL or backslash.
bool SafeRepoPath(std::string_view path);

}  // namespace hubcache::store
