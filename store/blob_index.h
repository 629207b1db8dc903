// BlobIndex: the writer of the index's blob records (store/index.h lists
// the tables): a blob entering or leaving the store, and its last access,
// which orders eviction. Internal to store/: only the BlobStore (and the
// store's own fsck) write blob records, so that "indexed" always means
// "verified and on disk". Readers use Index::GetBlob and friends.
//
// Thread safety: all methods are thread-safe. Writes block until durable;
// Touch() does not write (it is batched, see store/index_env.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/result.h"
#include "store/digest.h"
#include "store/index.h"

namespace hubcache::store {

class BlobIndex {
 public:
  explicit BlobIndex(std::shared_ptr<internal::IndexEnv> env);
  ~BlobIndex();

  // Inserts or replaces the record of `digest`, keeping `lru` in step. The
  // pin count in `record` is ignored: Index::Pin()/Unpin() own it. Returns
  // once durable.
  Result<void> PutBlob(const Digest& digest, const BlobRecord& record);
  // Removes `digest`; true if it was there. Returns once durable.
  Result<bool> DeleteBlob(const Digest& digest);
  // Calls `fn` for blobs from least to most recently used until it returns false.
  Result<void> ForEachByAge(
      const std::function<bool(const Digest&, const BlobRecord&)>& fn) const;

  // Records that `digest` was read at `when` (unix seconds). Cheap: no LMDB
  // write here.
  void Touch(const Digest& digest, std::int64_t when);
  // Writes pending touches now and waits until they are durable.
  Result<void> Flush();
  // Batches of touches that could not be written (each logged).
  std::uint64_t touch_failures() const;
  internal::IndexEnv& TEST_env() { return *impl_; }

 private:
  std::shared_ptr<internal::IndexEnv> impl_;
};

}  // namespace hubcache::store
