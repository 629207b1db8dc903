// Air-gap bundles: a directory that carries repo revisions from one store to
// another (`hubcache export`, `hubcache import`).
//
// Layout:
//   DIR/manifest.json          what the bundle holds (below)
//   DIR/blobs/sha256/<hex>     LFS content, named by its sha256
//   DIR/blobs/sha1/<hex>       regular files, named by their git blob id
// The manifest (format "hubcache-bundle", format_version 1) lists each repo
// with its type, name, visibility upstream (public or restricted), its refs
// (revision → commit), every file of each commit (path, digest, size, lfs
// flag; or a path known not to exist), the API documents stored for it (repo
// info, tree pages, ...; verbatim, with the request they answer), among them
// the documents of the repo itself (revision "@": the Hub's refs listing,
// by which the importing side resolves every branch and tag offline), and
// every blob with its size. It is written last, so a bundle with a manifest
// is complete.
//
// Import trusts nothing in the bundle: every blob is hashed while it is
// written into the store and only a blob whose digest and size match is
// committed; a repo's files, refs and documents are indexed only after every
// blob it needs is in the store, so a tampered bundle indexes nothing bad.
// Blobs already in the store are skipped, so import is idempotent, and a
// re-run after an interruption continues with the blobs still missing.
//
// Thread safety: functions only; the caller holds the cache directory's lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "store/blob_store.h"
#include "store/catalog.h"

namespace hubcache::store {

// What an export writes of each repo: refs (revision → commit) and commits.
struct Selection {
  std::map<std::string, std::string> refs;
  std::set<std::string> commits;  // those of `refs` included
};

// Resolves export specs: a spec without a revision means every ref of the
// repo (every commit if it has none). Errors name what is not cached.
tl::expected<std::map<RepoId, Selection>, std::string> SelectForExport(
    const Index& index, const std::vector<RepoSpec>& specs);

// Copies `from` to `to` through a .part file, replacing what is there (it is
// not trusted) unless it is the same file. Returns whether it copied.
tl::expected<bool, std::string> CopyBlobFile(const std::filesystem::path& from,
                                             const std::filesystem::path& to);

struct ExportReport {
  std::size_t repos = 0;
  std::size_t commits = 0;
  std::size_t files = 0;
  std::size_t blobs_copied = 0;
  std::size_t blobs_present = 0;  // hard links to the store's blobs already
  std::uint64_t bytes = 0;        // of all blobs in the bundle
};

// Writes the revisions `specs` name into `out` (created if needed): a spec
// without a revision exports every ref of the repo (every commit if it has
// none). Errors (as a message): a revision or blob that is not cached, I/O.
// Reads only: works beside a running daemon on `cache_dir`.
tl::expected<ExportReport, std::string> ExportBundle(const Index& index,
                                                     const std::filesystem::path& cache_dir,
                                                     const std::vector<RepoSpec>& specs,
                                                     const std::filesystem::path& out);

struct ImportReport {
  struct Repo {
    std::string label;  // datasets/org/name
    bool imported = false;
    std::size_t commits = 0;
    std::size_t files = 0;
    std::size_t refs = 0;
    bool restricted = false;  // gated or private upstream
    std::string problem;      // why it was rejected
  };
  std::vector<Repo> repos;
  std::size_t blobs_added = 0;
  std::size_t blobs_present = 0;
  std::uint64_t bytes_added = 0;
  std::vector<std::string> problems;  // every rejected blob and why
};

// Imports the bundle in `dir`. `mark_public`: serve repos that were
// restricted upstream to everyone (an air-gapped site has no Hub to check
// tokens with); without it they keep answering 401 offline. `on_blob` (may be
// empty) is told of each blob as it is checked (digest hex, bytes).
// Errors (as a message): no readable manifest, a manifest that does not
// parse or breaks the format. Rejected repos and blobs are in the report.
tl::expected<ImportReport, std::string> ImportBundle(
    BlobStore& store, const std::filesystem::path& dir, bool mark_public,
    const std::function<void(const std::string&, std::uint64_t)>& on_blob = {});

// Streams the file at `path` into the store as `digest` of `size` bytes,
// verifying both. Errors (as a message): size or digest mismatch, `path` a
// symlink or not a regular file, I/O.
// Shared with the HF-cache import.
tl::expected<bool, std::string> AddBlobFromFile(BlobStore& store, const Digest& digest,
                                                std::uint64_t size,
                                                const std::filesystem::path& path);

}  // namespace hubcache::store
