// SmallBlobCache: the content of recently read small blobs (config files,
// tokenizers: most cache hits by count), kept in memory so that a hit costs
// no index read, open, fstat or read.
//
// It is a BlobObserver of the store: a blob that leaves the store
// (eviction, `hubcache rm`) leaves the cache first, so it never serves a
// blob the store no longer holds. Bounded by kCapacityBytes, least recently
// used entries go first.
//
// Cost: a cached answer is a hash-map lookup under a mutex, safe on an event
// loop. A miss reads through BlobStore::Lookup() and one pread of at most
// kMaxBlobBytes, the same bounded work as serving the hit from the file.
//
// Thread safety: all methods are thread-safe. The cache must be removed from
// the store's observers (or the store destroyed) before it is destroyed.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/blob_events.h"
#include "store/digest.h"

namespace hubcache::store {

class BlobStore;

class SmallBlobCache final : public BlobObserver {
 public:
  static constexpr std::uint64_t kMaxBlobBytes = 64 * 1024;
  static constexpr std::uint64_t kCapacityBytes = 32 << 20;

  // Registers itself as an observer of `store`, which must outlive it.
  explicit SmallBlobCache(BlobStore& store);
  ~SmallBlobCache() override;
  SmallBlobCache(const SmallBlobCache&) = delete;
  SmallBlobCache& operator=(const SmallBlobCache&) = delete;

  // The content of committed blob `digest` if it is at most kMaxBlobBytes,
  // or null (absent, larger, or unreadable: the caller serves it from the
  // store, which reports why). Records the access in the store.
  std::shared_ptr<const std::string> Get(const Digest& digest);

  // Bytes held now.
  std::uint64_t bytes() const;

  void OnCommitted(const CommittedBlob&) override {}
  void OnRemoving(const Digest& digest) override;

 private:
  struct Entry {
    std::shared_ptr<const std::string> content;
    std::list<Digest>::iterator position;
  };

  BlobStore& store_;
  mutable std::mutex mu_;
  std::unordered_map<Digest, Entry> entries_;  // GUARDED_BY(mu_)
  std::list<Digest> order_;                    // GUARDED_BY(mu_): least recent first
  std::uint64_t bytes_ = 0;                    // GUARDED_BY(mu_)
};

}  // namespace hubcache::store
