// The store's seams for components that follow it (DESIGN.md "P2P"):
//
//   BlobObserver  hears that a blob was committed (verified, durable,
//                 indexed) and that a blob is about to be removed (its index
//                 entry is gone, its file is not yet unlinked), so that a
//                 seeder can start seeding a new blob and stop seeding one
//                 before its file goes, and an in-memory cache can drop it.
//   HashTap       sees every byte of a blob being written, in order from
//                 offset 0, in the same pass that computes its digest, so
//                 that torrent piece hashes cost no second read of the file.
//
// Both are registered on the BlobStore (store/blob_store.h) and apply to
// every writer, whatever fills it: a download, a bundle import or an HF-cache
// import all go through BlobStore::BeginWrite and BlobWriter::Commit.
//
// Thread rule: callbacks run synchronously on the store's caller's thread
// (the blocking pool in the daemon, never an event loop), so they must be
// quick, must not block on the network, and must not call back into the
// BlobStore's space management (Reserve, Remove, EvictTo): OnRemoving runs
// while the store holds its space lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>

#include "store/digest.h"

namespace hubcache::store {

struct CommittedBlob {
  Digest digest;
  std::uint64_t size = 0;
  std::filesystem::path path;  // where the blob's file now lives in blobs/
};

class BlobObserver {
 public:
  virtual ~BlobObserver() = default;
  // `blob` is in the store: a Lookup() finds it from now on.
  virtual void OnCommitted(const CommittedBlob& blob) = 0;
  // `digest` is leaving the store (eviction, `hubcache rm`): lookups no longer
  // find it, and its file is unlinked as soon as this returns. Descriptors
  // opened before keep reading the unlinked inode.
  virtual void OnRemoving(const Digest& digest) = 0;
};

class HashTap {
 public:
  virtual ~HashTap() = default;
  // The next bytes of the blob, in order from offset 0: every byte exactly
  // once, on whichever thread is hashing (one at a time).
  virtual void Update(std::span<const std::uint8_t> bytes) = 0;
  // Every byte was seen; `verified` says whether they hashed to the digest.
  // Called once, before the blob is committed (a failed commit follows a
  // true here, so act on OnCommitted, not on this). Not called when the
  // writer is abandoned before all bytes arrived.
  virtual void Finish(bool verified) = 0;
};

// Makes the tap of one writer (or null: no tap for this blob).
using HashTapFactory =
    std::function<std::unique_ptr<HashTap>(const Digest& digest, std::uint64_t size)>;

}  // namespace hubcache::store
