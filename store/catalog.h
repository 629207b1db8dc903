// Catalog: what the store holds, by repository (`hubcache ls`, `rm`, `pin`).
//
// Repositories are named as in URLs: `org/name` for a model,
// `datasets/org/name` or `spaces/org/name` otherwise, optionally followed by
// `@REVISION` (a branch, a tag, refs/pr/N or a 40-hex commit).
//
// Thread safety: functions only; they take the index or store they work on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/blob_store.h"
#include "store/index.h"

namespace hubcache::store {

// A repository and, optionally, a revision of it, as typed by an operator.
struct RepoSpec {
  RepoId repo;
  std::string revision;  // empty: none given
};

// Parses `org/name[@rev]`, `datasets/org/name[@rev]`, `spaces/...`. With
// `type` set (--type), the text has no type prefix. Errors: a message naming
// the problem.
tl::expected<RepoSpec, std::string> ParseRepoSpec(std::string_view text,
                                                  std::optional<RepoType> type = std::nullopt);
// `org/name`, `datasets/org/name`, `spaces/org/name`.
std::string RepoLabel(const RepoId& repo);
// `org/name@rev` (without `@rev` when none was given).
std::string SpecLabel(const RepoSpec& spec);

struct CommitSummary {
  std::string commit;
  std::uint64_t files = 0;         // paths that exist at the commit
  std::uint64_t bytes = 0;         // their total size
  std::uint64_t cached_files = 0;  // whose blob is in the store
  std::uint64_t cached_bytes = 0;
};

struct RepoSummary {
  RepoId repo;
  std::vector<std::pair<std::string, std::string>> refs;  // revision → commit, sorted
  std::vector<CommitSummary> commits;                     // commit order
  std::int64_t last_access = 0;  // latest read of any of its blobs (unix seconds), 0: never
  std::vector<std::string> pins;  // pin names that hold its blobs
};

// Every repository the index knows (files or refs), sorted by type and name.
Result<std::vector<RepoSummary>> Summarize(const Index& index);

// The commit `revision` names: itself when it is a commit hash, else what the
// refs table says. nullopt when the ref is not cached.
Result<std::optional<std::string>> ResolveLocally(const Index& index, const RepoId& repo,
                                                  std::string_view revision);

// The pin that `hubcache pin REPO@REV` creates: `<type>:<name>@<rev>`.
std::string PinName(const RepoId& repo, std::string_view revision);

struct RemoveReport {
  std::uint64_t entries = 0;  // index entries (files, refs, documents) removed
  std::uint64_t blobs = 0;    // blobs deleted because nothing refers to them any more
  std::uint64_t bytes = 0;
  std::uint64_t pins = 0;     // pins of the repo removed
};

// `hubcache rm REPO[@REV]`: forgets the repo (or one revision: its ref, and
// its commit's files and documents unless another ref still points at that
// commit) and deletes the blobs no other file record refers to. The repo's
// own pins go with it (only the removed revision's, for REPO@REV). The caller
// holds the cache directory's lock.
Result<RemoveReport> Remove(BlobStore& store, const RepoSpec& spec);

}  // namespace hubcache::store
