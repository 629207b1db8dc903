// Fsck: makes the blob files and the index agree, and checks blob contents.
//
// Three depths:
//   kRecover  run at every open: staging leftovers are removed; index entries
//             whose file is missing or has the wrong size are dropped; blob
//             files without an index entry are rehashed and adopted if their
//             content matches their name, else removed. No indexed blob is
//             rehashed, so it stays fast with many blobs.
//   kVerify   `hubcache verify`: rehashes every blob and reports mismatches,
//             missing files, wrong sizes and orphans, changing nothing. A
//             blob file whose content matches its name but has no index
//             entry is what a crash between a commit's rename and its index
//             write leaves: counted apart (`interrupted`), not a problem,
//             since every open adopts it.
//   kRepair   `hubcache verify --repair`: as kVerify, and fixes what it found
//             (a corrupt blob is removed from index and disk so it is fetched
//             again; orphans are adopted or removed).
//
// REQUIRES: the caller holds the cache directory lock and no BlobWriter is
// active (there is no concurrent writer). Thread safety: call from one thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "store/blob_store.h"

namespace hubcache::store {

enum class FsckMode { kRecover, kVerify, kRepair };

struct FsckReport {
  std::uint64_t blobs_checked = 0;   // index entries looked at
  std::uint64_t bytes_hashed = 0;
  std::uint64_t missing = 0;         // indexed, no file
  std::uint64_t wrong_size = 0;      // indexed, file of another size
  std::uint64_t corrupt = 0;         // file content does not match its digest
  std::uint64_t orphans = 0;         // file without index entry (or unparseable name)
  std::uint64_t adopted = 0;         // orphans whose content matched and were indexed
  std::uint64_t interrupted = 0;     // kVerify: such orphans, left to the next open
  std::uint64_t staging_removed = 0; // leftover in-flight downloads removed
  bool repaired = false;             // problems were fixed (kRecover / kRepair)
  // One line per problem, naming the digest or file and what is wrong.
  std::vector<std::string> problems;

  bool clean() const { return missing + wrong_size + corrupt + orphans == 0; }
};

Result<FsckReport> Fsck(BlobStore& store, FsckMode mode);

}  // namespace hubcache::store
