// Index: the LMDB database that says what the store holds.
//
// One LMDB environment in `<cache_dir>/index/`, opened once per process.
// Named databases (see DESIGN.md "Store"):
//   meta   schema version
//   blobs  digest → size, created, last access, pin count
//   lru    last access + digest → (nothing): blobs oldest-first, for eviction
//   pins   pin name + digest → (nothing): which pins hold which blob
//   files  (repo type, repo, commit, path) → digest, size, lfs flag, or a
//          negative entry: the path does not exist at that commit
//   refs   (repo type, repo, revision) → commit, fetched_at
//   access (repo type, repo) → public|restricted, checked_at; and
//          (token HMAC, repo type, repo) → grant expiry
//   docs   (repo type, repo, commit, normalized request) → API JSON document
// Keys longer than LMDB's limit (511 bytes) store a sha256 of their variable
// part instead, with the full text kept in the value and checked on read.
//
// Index is what anyone may read, and what the proxy and the operator may
// write: files, refs, access facts, documents, pins. The blob records
// themselves (a blob is in the store; its last access) are written only by
// the store, through BlobIndex (store/blob_index.h, internal to store/), over
// the same environment: see store/index_env.h for the writer thread.
//
// Reads run on the caller's thread in a short read transaction (MVCC: they
// never wait for a writer; cheap enough for an event loop) and return
// copies. Writes are queued to the single writer thread and return once
// durable: they block, so callers on an event loop offload them.
//
// Every value starts with a format byte; the schema version in `meta` is
// checked at open and a mismatch is refused (Errc::kSchemaMismatch).
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <functional>
#include <memory>
#include <optional>

#include "core/result.h"
#include "store/digest.h"
#include "store/repo_id.h"

namespace hubcache::store {

struct BlobRecord {
  std::uint64_t size = 0;
  std::int64_t created = 0;      // unix seconds
  std::int64_t last_access = 0;  // unix seconds
  std::uint32_t pins = 0;        // > 0: never evicted

  friend bool operator==(const BlobRecord&, const BlobRecord&) = default;
};


// What a path is at a commit.
struct FileRecord {
  bool exists = true;  // false: negative entry (the Hub said EntryNotFound)
  bool lfs = false;
  // The content digest (sha256 for LFS files, git blob sha1 otherwise): the
  // ETag. Unset for negative entries.
  std::optional<Digest> digest;
  std::uint64_t size = 0;
  friend bool operator==(const FileRecord&, const FileRecord&) = default;
};

struct RefRecord {
  std::string commit;         // 40 lower-case hex
  std::int64_t fetched_at = 0;  // unix seconds when the Hub last confirmed it
  friend bool operator==(const RefRecord&, const RefRecord&) = default;
};

enum class Visibility : std::uint8_t { kPublic = 1, kRestricted = 2 };

struct AccessRecord {
  Visibility visibility = Visibility::kRestricted;
  std::int64_t checked_at = 0;  // unix seconds
  friend bool operator==(const AccessRecord&, const AccessRecord&) = default;
};

// The response headers an API answer is stored with, to be replayed with
// it: nothing that frames the message (Content-Length, Transfer-Encoding,
// Connection) or belongs to another client (Set-Cookie).
inline constexpr std::string_view kDocHeaderNames[] = {"Content-Type", "Link", "X-Total-Count",
                                                       "ETag", "X-Repo-Commit"};

// Whether a DocRecord may carry this header: a name of kDocHeaderNames (as
// spelled there) and a value of visible characters, spaces and tabs (no CR,
// LF or NUL: a stored value must never split the response it is sent in).
inline bool IsDocHeader(std::string_view name, std::string_view value) {
  bool known = false;
  for (std::string_view n : kDocHeaderNames) known = known || n == name;
  if (!known || value.size() > 8192) return false;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

// An API answer cached at a commit (repo info, a tree page, paths-info).
struct DocRecord {
  std::string body;
  // Response headers to replay (IsDocHeader holds for each).
  std::vector<std::pair<std::string, std::string>> headers;
  std::int64_t stored_at = 0;
  friend bool operator==(const DocRecord&, const DocRecord&) = default;
};

// The HMAC of a token under the install secret (store/token_hmac.h); the
// token itself is never stored.
using TokenId = std::array<std::uint8_t, 32>;

namespace internal {
class IndexEnv;
}

class Index {
 public:
  static constexpr std::uint32_t kSchemaVersion = 1;

  // Opens or creates the index in `dir`. Errors: Errc::kSchemaMismatch when
  // the index was written by another schema version; system errors from the
  // filesystem; Errc::kIndexFailure for other LMDB failures.
  static Result<std::unique_ptr<Index>> Open(const std::filesystem::path& dir);
  // Over an environment the store opened (store/index_env.h).
  explicit Index(std::shared_ptr<internal::IndexEnv> env);
  // Flushes pending touches and stops the writer thread, unless a BlobIndex
  // still shares the environment.
  ~Index();

  // The record of `digest`, or nullopt.
  Result<std::optional<BlobRecord>> GetBlob(const Digest& digest) const;
  // Pins: a named set of blobs (e.g. "model/org/name@main") that eviction
  // never removes. Pinning a blob twice under one name counts once; blobs
  // that are not (yet) indexed are recorded and counted once they are.
  Result<void> Pin(std::string_view name, const std::vector<Digest>& digests);
  // Removes the pin `name` from all its blobs. Returns how many it held.
  Result<std::uint64_t> Unpin(std::string_view name);
  // Calls `fn(name, digest)` for every pinned blob until it returns false.
  Result<void> ForEachPin(
      const std::function<bool(std::string_view, const Digest&)>& fn) const;

  // Calls `fn` for every blob (digest order) until it returns false.
  Result<void> ForEachBlob(
      const std::function<bool(const Digest&, const BlobRecord&)>& fn) const;
  Result<std::uint64_t> BlobCount() const;

  // Files at a commit. Strings must not contain NUL (kInvalidArgument).
  Result<void> PutFile(const RepoId& repo, std::string_view commit, std::string_view path,
                       const FileRecord& record);
  Result<std::optional<FileRecord>> GetFile(const RepoId& repo, std::string_view commit,
                                            std::string_view path) const;
  // Every file recorded at `commit`, path order, until `fn` returns false.
  Result<void> ForEachFile(
      const RepoId& repo, std::string_view commit,
      const std::function<bool(std::string_view path, const FileRecord&)>& fn) const;

  // Every file record of every repo and commit, in key order (grouped by
  // repo, then commit), until `fn` returns false.
  Result<void> ForEachFileRecord(
      const std::function<bool(const RepoId&, std::string_view commit, std::string_view path,
                               const FileRecord&)>& fn) const;

  // Refs: revision (branch, tag, refs/pr/N) → commit.
  Result<void> PutRef(const RepoId& repo, std::string_view revision, const RefRecord& record);
  Result<std::optional<RefRecord>> GetRef(const RepoId& repo, std::string_view revision) const;
  Result<void> ForEachRef(const std::function<bool(const RepoId&, std::string_view revision,
                                                   const RefRecord&)>& fn) const;

  // Access facts: whether a repo is public, and per-token grants.
  Result<void> PutAccess(const RepoId& repo, const AccessRecord& record);
  Result<std::optional<AccessRecord>> GetAccess(const RepoId& repo) const;
  Result<void> PutGrant(const TokenId& token, const RepoId& repo, std::int64_t expires_at);
  Result<std::optional<std::int64_t>> GetGrant(const TokenId& token, const RepoId& repo) const;

  // API documents at a commit, keyed by a normalized request.
  Result<void> PutDoc(const RepoId& repo, std::string_view commit, std::string_view request,
                      const DocRecord& record);
  Result<std::optional<DocRecord>> GetDoc(const RepoId& repo, std::string_view commit,
                                          std::string_view request) const;

  // The API documents stored under (repo, revision), until `fn` returns false.
  Result<void> ForEachDoc(
      const RepoId& repo, std::string_view revision,
      const std::function<bool(std::string_view request, const DocRecord&)>& fn) const;

  // Removing what is known about a repo (`hubcache rm`). Each returns once
  // durable, with the number of entries removed.
  Result<std::uint64_t> DeleteRef(const RepoId& repo, std::string_view revision);
  // The files and API documents recorded under `revision` (a commit, or the
  // branch/tag/"@" a document was asked at).
  Result<std::uint64_t> DeleteRevisionData(const RepoId& repo, std::string_view revision);
  // Files, documents, refs and the access fact of `repo` (token grants expire
  // on their own).
  Result<std::uint64_t> DeleteRepo(const RepoId& repo);

  // Test hook: overwrites the stored schema version.
  Result<void> TEST_SetSchemaVersion(std::uint32_t version);

 private:
  std::shared_ptr<internal::IndexEnv> impl_;
};

}  // namespace hubcache::store
