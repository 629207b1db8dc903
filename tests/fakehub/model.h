// Model: the repositories the fake Hub serves, as loaded from a fixture.
//
// A Repo holds commits; a Commit holds files (path, content, LFS flag) and
// the derived git facts the Hub publishes: blob ids, LFS pointers, sha256,
// Xet hashes and git tree ids of directories. Everything about a commit is
// immutable. Refs (branches, tags, pull requests, converts) and access are
// the only mutable parts: MoveBranch() and SetAccess() change them.
//
// Thread safety: repos and commits are immutable after construction and may
// be read from any thread without locking; refs are guarded by an internal
// mutex, so Resolve(), GetRefs() and MoveBranch() are thread-safe. Pointers
// returned by the model stay valid as long as the Model.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fakehub/content.h"

namespace hubcache::fakehub {

enum class RepoType { kModel, kDataset, kSpace };

// "model", "dataset", "space".
std::string_view TypeName(RepoType type);
// "models", "datasets", "spaces": the form used in API URLs.
std::string_view TypePlural(RepoType type);
// Accepts the singular and the plural form.
std::optional<RepoType> ParseRepoType(std::string_view text);

enum class Gating { kNone, kAuto, kManual };

struct File {
  std::string path;
  std::shared_ptr<const Content> content;
  bool lfs = false;
  // Git blob id of what git stores: the content, or the LFS pointer file.
  std::string oid;
  // LFS only: sha256 of the content, the pointer text, the Xet hash.
  std::string sha256;
  std::shared_ptr<const Content> pointer;
  std::string xet_hash;

  std::uint64_t size() const { return content->size(); }
  // What the Hub calls the file's etag: sha256 for LFS, blob id otherwise.
  const std::string& etag() const { return lfs ? sha256 : oid; }
};

// One line of a tree listing: a file, or a directory (file == nullptr).
struct Entry {
  std::string path;
  const File* file = nullptr;
  std::string tree_oid;  // directories: git tree id
  bool is_dir() const { return file == nullptr; }
};

struct Commit {
  std::string name;  // fixture name
  std::string sha;   // 40 lower-hex
  std::string title;
  std::string date;  // ISO 8601, e.g. 2024-01-01T00:00:00.000Z
  const Commit* parent = nullptr;
  std::vector<File> files;     // sorted by path (bytewise)
  std::vector<Entry> entries;  // files and directories, sorted by path
  std::string root_tree_oid;

  const File* FindFile(std::string_view path) const;
  const Entry* FindEntry(std::string_view path) const;
  // Entries below directory `dir` ("" = the root): every descendant when
  // `recursive`, else the direct children. Sorted by path.
  std::vector<const Entry*> List(std::string_view dir, bool recursive) const;
  // The oldest ancestor-or-self commit since which `path` has had its
  // current git id (the "last commit" the Hub reports for an entry).
  const Commit* LastChange(const Entry& entry) const;
};

struct Refs {
  std::map<std::string, std::string> branches;         // name -> sha
  std::map<std::string, std::string> tags;             // name -> sha
  std::map<std::uint64_t, std::string> pull_requests;  // N (refs/pr/N) -> sha
  std::map<std::string, std::string> converts;         // name (refs/convert/X) -> sha
};

struct Repo {
  RepoType type = RepoType::kModel;
  std::string id;  // "org/name"
  bool is_private = false;
  Gating gated = Gating::kNone;
  bool disabled = false;
  // Tokens with access: the owner's for a private repo, approved users'
  // for a gated one.
  std::set<std::string, std::less<>> tokens;
  std::string created_at;
  std::vector<std::unique_ptr<Commit>> commits;
  // Earlier ids of the repo (it was renamed): requests naming one of them
  // are answered with a 307 to the same path under `id`.
  std::vector<std::string> renamed_from;

  // By 40-hex sha or by fixture name; nullptr if unknown.
  const Commit* FindCommit(std::string_view sha_or_name) const;
  // "model/org/name": unique across types.
  std::string Key() const;
};

class Model {
 public:
  Model(std::vector<std::unique_ptr<Repo>> repos, std::map<std::string, Refs> refs_by_key,
        std::set<std::string, std::less<>> users);

  const Repo* FindRepo(RepoType type, std::string_view id) const;
  // The repo that `old_id` was renamed to, or nullptr.
  const Repo* FindRenamed(RepoType type, std::string_view old_id) const;
  const std::vector<std::unique_ptr<Repo>>& repos() const { return repos_; }

  // A token is valid if the fixture names it anywhere (a repo's tokens or
  // the users list) or it is the built-in `hf_user`.
  bool IsValidToken(std::string_view token) const;

  // Resolves a decoded revision: a commit sha of the repo, a branch, a tag,
  // "HEAD" (= main), refs/heads/X, refs/tags/X, refs/pr/N, refs/convert/X.
  // nullptr if it names nothing.
  const Commit* Resolve(const Repo& repo, std::string_view revision) const;
  // True if `revision` is a ref name (or "refs/..." form) of the repo; used
  // to split an unencoded revision that contains slashes off a path.
  bool IsRefName(const Repo& repo, std::string_view revision) const;
  Refs GetRefs(const Repo& repo) const;

  // Points `branch` at `commit` (sha or fixture name), creating the branch if
  // needed. Returns an error message, or "" on success.
  std::string MoveBranch(RepoType type, std::string_view repo, std::string_view branch,
                         std::string_view commit);

  // Who may read a repo now: the fixture's settings until SetAccess
  // changes them (a repo made private, an approval revoked, a deletion).
  struct Access {
    bool is_private = false;
    bool deleted = false;  // every route answers as for a repo that never existed
    std::set<std::string, std::less<>> tokens;  // as Repo::tokens
  };
  Access AccessOf(const Repo& repo) const;
  // Replaces a repo's access. Returns an error message, or "" on success.
  std::string SetAccess(RepoType type, std::string_view repo, Access access);
  // Every repo's access back to the fixture's settings.
  void ResetAccess();

  // The content of an LFS file by its sha256 (what the CDN serves).
  const Content* FindLfs(std::string_view sha256) const;

 private:
  std::vector<std::unique_ptr<Repo>> repos_;
  std::map<std::string, const Repo*, std::less<>> by_key_;
  std::map<std::string, const Repo*, std::less<>> renamed_;  // "type/old id" -> repo
  std::map<std::string, const Content*, std::less<>> lfs_;
  std::set<std::string, std::less<>> tokens_;

  mutable std::mutex mu_;
  std::map<const Repo*, Refs> refs_;  // GUARDED_BY(mu_)
  std::map<const Repo*, Access> access_;  // GUARDED_BY(mu_)
};

// Fills in the derived facts of a commit whose `files` (path, content, lfs)
// are set: sorts files, computes blob ids, LFS pointers and hashes, Xet
// hashes, directory entries and git tree ids. Returns an error message for
// a bad path or a path that is both a file and a directory, else "".
std::string BuildCommit(Commit& commit);

// True for exactly 40 lower-case hex digits (what clients accept as a commit).
bool IsCommitSha(std::string_view text);

}  // namespace hubcache::fakehub
