// Index: the LMDB database that says what the store holds.
//
// One LMDB environment in `<cache_dir>/index/`, opened once per process.
// Named databases (see DESIGN.md "Store"):
//   meta   schema version
//   blobs  digest → size, created, last access, pin count
//   lru    last access + digest → (nothing): blobs oldest-first, for eviction
// (files, refs, access and docs join as the proxy needs them.)
//
// Reads run on the caller's thread in a short read transaction and return
// copies. Writes are queued to a single writer thread, which commits them in
// groups: every queued write gets its own nested transaction (so one failure
// does not undo the others) inside one outer transaction, so a burst of
// writes costs one fsync. Last-access updates (Touch) are not written per
// call: they are batched and flushed by the writer every few seconds, when
// many are pending, and on Flush() or destruction.
//
// Every value starts with a format byte; the schema version in `meta` is
// checked at open and a mismatch is refused (Errc::kSchemaMismatch).
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "core/result.h"
#include "store/digest.h"

namespace hubcache::store {

struct BlobRecord {
  std::uint64_t size = 0;
  std::int64_t created = 0;      // unix seconds
  std::int64_t last_access = 0;  // unix seconds
  std::uint32_t pins = 0;        // > 0: never evicted

  friend bool operator==(const BlobRecord&, const BlobRecord&) = default;
};

class Index {
 public:
  static constexpr std::uint32_t kSchemaVersion = 1;

  // Opens or creates the index in `dir`. Errors: Errc::kSchemaMismatch when
  // the index was written by another schema version; system errors from the
  // filesystem; Errc::kIndexFailure for other LMDB failures.
  static Result<std::unique_ptr<Index>> Open(const std::filesystem::path& dir);
  // Flushes pending touches and stops the writer thread.
  ~Index();

  // The record of `digest`, or nullopt.
  Result<std::optional<BlobRecord>> GetBlob(const Digest& digest) const;
  // Inserts or replaces the record of `digest`, keeping `lru` in step.
  // Returns once durable.
  Result<void> PutBlob(const Digest& digest, const BlobRecord& record);
  // Removes `digest`; true if it was there. Returns once durable.
  Result<bool> DeleteBlob(const Digest& digest);
  // Adds `delta` to the pin count of each blob that exists (saturating at 0).
  Result<void> AddPins(const Digest& digest, std::int32_t delta);

  // Calls `fn` for every blob (digest order) until it returns false.
  Result<void> ForEachBlob(
      const std::function<bool(const Digest&, const BlobRecord&)>& fn) const;
  // Calls `fn` for blobs from least to most recently used until it returns false.
  Result<void> ForEachByAge(
      const std::function<bool(const Digest&, const BlobRecord&)>& fn) const;
  Result<std::uint64_t> BlobCount() const;

  // Records that `digest` was read at `when` (unix seconds). Cheap: no LMDB
  // write here; see the class comment.
  void Touch(const Digest& digest, std::int64_t when);
  // Writes pending touches now and waits until they are durable.
  Result<void> Flush();

  // Test hook: overwrites the stored schema version.
  Result<void> TEST_SetSchemaVersion(std::uint32_t version);

  struct Impl;

 private:
  explicit Index(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcache::store
