// The huggingface_hub cache layout (HUB_PROTOCOL.md §7.2), both ways:
// `hubcache export --hf-cache DIR` writes what the Python and JS clients
// read with HF_HUB_OFFLINE=1 and no hubcache; `hubcache import --hf-cache
// DIR` seeds the store from a client cache, verifying every blob.
//
//   DIR/CACHEDIR.TAG
//   DIR/models--org--name/blobs/<etag>              sha256 (LFS) or git sha1
//   DIR/models--org--name/snapshots/<commit>/<path> relative symlink to the blob
//   DIR/models--org--name/refs/<revision>           the commit, no newline
//   DIR/models--org--name/.no_exist/<commit>/<path> paths known not to exist
//   DIR/models--org--name/trees/<commit>.json       the file list, no xet_hash
//
// Thread safety: functions only.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "store/blob_store.h"
#include "store/catalog.h"

namespace hubcache::store {

// `models--org--name`, `datasets--org--name`, `spaces--org--name`.
std::string HfCacheFolder(const RepoId& repo);

struct HfExportReport {
  std::size_t repos = 0;
  std::size_t commits = 0;
  std::size_t files = 0;
  std::size_t blobs_copied = 0;
  std::uint64_t bytes = 0;
};

// Writes the revisions `specs` name (as ExportBundle selects them) into the
// client cache at `out`. Reads only: works beside a running daemon.
tl::expected<HfExportReport, std::string> ExportHfCache(const Index& index,
                                                        const std::filesystem::path& cache_dir,
                                                        const std::vector<RepoSpec>& specs,
                                                        const std::filesystem::path& out);

struct HfImportReport {
  std::size_t repos = 0;
  std::size_t commits = 0;
  std::size_t files = 0;
  std::size_t refs = 0;
  std::size_t blobs_added = 0;
  std::uint64_t bytes_added = 0;
  std::vector<std::string> problems;  // blobs that failed verification, skipped folders
};

// Imports every repo folder of the client cache at `dir`. A file whose blob
// does not hash to its name is reported and skipped. `mark_public` as for
// ImportBundle. Errors (as a message): `dir` is not readable.
tl::expected<HfImportReport, std::string> ImportHfCache(BlobStore& store,
                                                        const std::filesystem::path& dir,
                                                        bool mark_public);

}  // namespace hubcache::store
