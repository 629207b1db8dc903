// BlobStore: content-addressed blob files that never expose an unverified byte.
//
// Layout under the cache directory (DESIGN.md "Store"):
//   blobs/sha256/ab/<64 hex>   LFS content, by sha256
//   blobs/sha1/ab/<40 hex>     regular files, by git blob id
//   staging/<kind>-<hex>.part  downloads in progress
//   index/                     the LMDB Index
//   quarantine/<kind>-<hex>    blobs taken out because they could not be read
//
// A blob is written through a BlobWriter: bytes arrive at any offset (parallel
// ranged downloads write out of order), the writer hashes the contiguous
// prefix as it grows, and Commit() checks size and digest, fsyncs, renames the
// file into blobs/ and records it in the index. Lookups see a blob only after
// that. A reader holding a descriptor keeps reading correct bytes even if the
// blob is evicted meanwhile (unlink keeps the inode alive).
//
// The caller holds the cache directory's lock (store/cache_dir.h), so one
// process owns staging/ and blobs/. Synchronous and Asio-free.
//
// What may run on an event loop (bounded work, no lock that a disk wait holds):
//   GetBlob, Touch, used_bytes, reserved_bytes, BlobPath, counters: an LMDB
//     read transaction (MVCC: never waits for the writer thread) or a mutex
//     around a few integers;
//   Lookup: GetBlob plus open(2) and fstat(2) of one file, the work nginx
//     does on its event loop for every hit (it can wait for the disk only on
//     a cold dentry/inode cache);
//   BlobWriter::contiguous_bytes, WrittenFrom, verified, state, OpenReader:
//     the writer's short mutex (Commit() and WriteAt() never hold it across
//     a disk wait), or one fcntl(2) duplicating a descriptor.
// Everything else blocks on the disk and runs on a blocking pool (Offload):
//   BeginWrite (reserves space: statvfs, eviction with LMDB commits, unlinks;
//   creates the staging file), Reserve, EvictTo, Remove, and BlobWriter's
//   WriteAt, Verify, Commit (fsync, rename, LMDB commit) and Abort.
// Observers and hash taps (store/blob_events.h) run on the thread of the
// blocking call that triggers them.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "core/unique_fd.h"
#include "store/blob_events.h"
#include "store/digest.h"
#include "store/disk.h"
#include "store/index.h"
#include "store/options.h"

namespace hubcache::store {

class BlobIndex;
class BlobStore;
class BlobWriter;

// Space held for a download until it is committed or abandoned. Move-only;
// destruction releases it.
class Reservation {
 public:
  Reservation() = default;
  Reservation(Reservation&& other) noexcept;
  Reservation& operator=(Reservation&& other) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation();

  std::uint64_t bytes() const { return bytes_; }

 private:
  friend class BlobStore;
  Reservation(BlobStore* store, std::uint64_t bytes) : store_(store), bytes_(bytes) {}
  BlobStore* store_ = nullptr;
  std::uint64_t bytes_ = 0;
};

struct EvictReport {
  std::uint64_t blobs = 0;
  std::uint64_t bytes = 0;
};

class BlobStore {
 public:
  // Opens (creating) blobs/, staging/ and index/ under `options.cache_dir`.
  // With `recover`, first makes files and index agree after a crash (see
  // store/fsck.h, FsckMode::kRecover); `hubcache verify` opens without it so
  // that it can report what it finds. Errors: those of Index::Open; system
  // errors creating the directories.
  static Result<std::unique_ptr<BlobStore>> Open(const Options& options, bool recover = true);
  ~BlobStore();

  struct Blob {
    std::uint64_t size = 0;
    UniqueFd fd;  // open for reading at offset 0
  };

  // A committed blob, opened for reading. Records the access (batched).
  // Errors: core::Errc::kNotFound if absent (or its file vanished);
  // core::Errc::kCorrupt if the file's size disagrees with the index.
  Result<Blob> Lookup(const Digest& digest);

  // The record of `digest` (size, access times, pins), or nullopt if it is
  // not committed. Errors: the index's.
  Result<std::optional<BlobRecord>> GetBlob(const Digest& digest) const;

  // Records that `digest` was read now (batched; see Index::Touch).
  void Touch(const Digest& digest);
  // Committed blobs. Errors: the index's.
  Result<std::uint64_t> BlobCount() const;

  // Starts writing `digest`, which will be `expected_size` bytes, after
  // reserving that much space (see Reserve()); the writer holds the
  // reservation until it commits or aborts.
  // Errors: core::Errc::kAlreadyExists if it is committed already;
  // Errc::kBusy if another writer holds it (one that has neither failed
  // nor committed: those let the digest go at once, though their readers
  // keep them alive); Errc::kNoSpace if the space
  // cannot be reserved (the caller may serve pass-through instead); system
  // errors from the filesystem. The writer must not outlive the store.
  Result<std::unique_ptr<BlobWriter>> BeginWrite(const Digest& digest,
                                                 std::uint64_t expected_size);

  // Store events (store/blob_events.h). `observer` hears of every commit and
  // removal from now until RemoveObserver(); it must stay alive until then.
  void AddObserver(BlobObserver* observer);
  void RemoveObserver(BlobObserver* observer);
  // Every writer begun from now on gets a tap from `factory` (when it makes
  // one), fed in the pass that computes the digest.
  void AddHashTap(HashTapFactory factory);

  // Holds `bytes` of space for a download. When the limits do not allow it
  // (store.max_bytes, or store.min_free_percent of the filesystem kept free),
  // evicts least-recently-used blobs that no pin holds, oldest first, index
  // entry before file. Blobs being written are not in the index and are never
  // candidates. Errors: Errc::kNoSpace when even evicting every candidate
  // would not make room; then nothing is evicted.
  Result<Reservation> Reserve(std::uint64_t bytes);

  // Evicts least-recently-used unpinned blobs until the cached bytes are at
  // most `target_bytes` (`hubcache gc --to SIZE`).
  Result<EvictReport> EvictTo(std::uint64_t target_bytes);

  // Deletes a committed blob (`hubcache rm`): index entry, then file. False
  // if it was not there. Errors: Errc::kBusy if a pin holds it.
  Result<bool> Remove(const Digest& digest);

  // Takes out of the store a committed blob whose file cannot be read back
  // (EIO, or shorter than its record), pinned or not: index entry first (a
  // download that commits it again gets its pins back), then the file moves
  // to quarantine/<kind>-<hex> for the operator to look at (or is unlinked
  // when that fails; its bytes no longer count as used). False if it was not
  // in the store. Errors: the index's.
  Result<bool> Quarantine(const Digest& digest, std::string_view why);

  // Bytes of all committed blobs; bytes reserved by downloads in flight.
  std::uint64_t used_bytes() const;
  std::uint64_t reserved_bytes() const;

  // Where a committed blob's file lives (whether or not it exists).
  std::filesystem::path BlobPath(const Digest& digest) const;
  // The same, for a store rooted at `cache_dir` that this process has not
  // opened (commands that read beside a running daemon).
  static std::filesystem::path BlobPathIn(const std::filesystem::path& cache_dir,
                                          const Digest& digest);
  const std::filesystem::path& root() const { return root_; }
  // The file operations the store uses (store/disk.h).
  Disk& disk() const { return disk_; }
  // Counters since open, for /metrics: blobs evicted, downloads whose bytes
  // did not hash to their digest.
  std::uint64_t evictions() const { return evictions_.load(); }
  std::uint64_t digest_mismatches() const { return digest_mismatches_.load(); }
  // Blobs taken out by Quarantine().
  std::uint64_t quarantined() const { return quarantined_.load(); }
  // Batches of last-access updates that could not be written (each logged).
  std::uint64_t touch_failures() const;
  // What is known about repos: files, refs, access, documents, pins. Blob
  // records are not written through it (see below).
  Index& index() { return *index_; }
  // The writer of blob records: for store/ itself (fsck, imports) and tests.
  // Its header, store/blob_index.h, is off limits to proxy/ and daemon/
  // (tests/layering_test.sh), so only the store makes a blob visible.
  BlobIndex& blob_index() { return *blob_index_; }

 private:
  friend class BlobWriter;
  friend class Reservation;
  BlobStore(std::filesystem::path root, const Options& options, std::unique_ptr<Index> index,
            std::unique_ptr<BlobIndex> blob_index);
  void EndWrite(const Digest& digest);
  void Release(std::uint64_t bytes);
  // Moves `size` bytes from a writer's reservation to the used bytes.
  void Committed(Reservation& reservation, std::uint64_t size);
  // Bytes a new reservation of `bytes` would leave missing under the limits
  // (0: it fits). REQUIRES: space_mu_ held.
  std::uint64_t Shortfall(std::uint64_t bytes) const;
  // Deletes `digest` (index, then file) and subtracts `size` from the used
  // bytes if it was indexed. REQUIRES: space_mu_ held.
  Result<bool> DeleteLocked(const Digest& digest, std::uint64_t size);
  // Evicts LRU candidates until `enough(evicted_bytes)`. REQUIRES: space_mu_.
  Result<EvictReport> EvictWhile(const std::function<bool(std::uint64_t)>& more);

  // Tells the observers; the list is copied so that none is called under
  // observers_mu_.
  std::vector<BlobObserver*> Observers() const;
  void NotifyCommitted(const CommittedBlob& blob) const;
  void NotifyRemoving(const Digest& digest) const;
  std::vector<std::unique_ptr<HashTap>> MakeTaps(const Digest& digest, std::uint64_t size) const;

  const std::filesystem::path root_;
  const Options options_;
  Disk& disk_;
  mutable std::mutex observers_mu_;
  std::vector<BlobObserver*> observers_;     // GUARDED_BY(observers_mu_)
  std::vector<HashTapFactory> tap_factories_;  // GUARDED_BY(observers_mu_)
  std::unique_ptr<Index> index_;
  std::unique_ptr<BlobIndex> blob_index_;
  std::mutex mu_;
  std::set<Digest> writing_;  // GUARDED_BY(mu_)

  mutable std::mutex space_mu_;  // serializes reservations and evictions
  std::uint64_t used_ = 0;       // GUARDED_BY(space_mu_)
  std::uint64_t reserved_ = 0;   // GUARDED_BY(space_mu_)
  // Bytes downloads in flight have written so far (they count against the
  // filesystem's free space already, and against their reservation).
  std::atomic<std::uint64_t> staged_{0};
  std::atomic<std::uint64_t> evictions_{0};
  std::atomic<std::uint64_t> digest_mismatches_{0};
  std::atomic<std::uint64_t> quarantined_{0};
};

// Writes one blob into staging. Made by BlobStore::BeginWrite().
class BlobWriter {
 public:
  enum class State { kWriting, kCommitted, kFailed };

  // Aborts unless committed.
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Writes `data` at `offset`. Safe to call from several threads at once with
  // any offsets; bytes already written are not written again (the first
  // write of a byte wins), so a retried range never changes hashed content.
  // Errors: Errc::kSizeMismatch if the range ends past the expected size;
  // system errors (ENOSPC) from the filesystem, after which the range may be
  // written again. REQUIRES: state() == kWriting.
  Result<void> WriteAt(std::uint64_t offset, std::span<const std::uint8_t> data);

  // Bytes from offset 0 that are on disk (readable through OpenReader()).
  std::uint64_t contiguous_bytes() const { return contiguous_.load(); }
  // The end of the run of on-disk bytes that contains `offset`, or `offset`
  // when that byte is not on disk yet. Ranged downloads fill the file out of
  // order: a reader far ahead need not wait for the prefix.
  std::uint64_t WrittenFrom(std::uint64_t offset) const;
  std::uint64_t expected_size() const { return expected_size_; }
  const Digest& digest() const { return digest_; }
  State state() const { return state_.load(); }

  // A read-only descriptor of the blob's bytes, for readers that follow the
  // download, at any time in the writer's life: a duplicate of one opened
  // with the staging file, so it reads the same file after Commit()
  // (rename), Abort() (unlink) and an eviction of the committed blob
  // (unlink) alike. The duplicates share a file offset: read them with
  // pread/sendfile at explicit offsets. Errors: system errors (EMFILE).
  Result<UniqueFd> OpenReader() const;

  // Checks that every byte is written and hashes to the digest, without
  // making anything durable or visible: after it succeeds the staging file
  // holds exactly the blob, so readers following it may send the last byte
  // while Commit() waits for the disk. Idempotent. Errors: Errc::kIncomplete
  // if bytes are missing (the writer stays usable); Errc::kDigestMismatch
  // (the staging file is deleted, actual_digest() says what arrived).
  Result<void> Verify();
  // True once Verify() succeeded (any thread).
  bool verified() const { return verified_.load(); }

  // Verifies (unless Verify() did already) and publishes the blob: fsync,
  // rename into blobs/, fsync of both directories, index. The disk work
  // runs without the writer's lock: WrittenFrom() and OpenReader() do not
  // wait for the disk. Not to be called concurrently with Abort(). Errors: those of
  // Verify(); system errors from fsync/rename; index errors. Every error but
  // kIncomplete fails the writer.
  Result<void> Commit();
  // Deletes the staging file. Idempotent.
  void Abort();

  // After a digest mismatch: the digest of the bytes that were written.
  std::optional<Digest> actual_digest() const;

  // Adds a consumer of the bytes in the pass that hashes them (see
  // store/blob_events.h), besides the store's taps. REQUIRES: no byte has
  // been hashed yet (call it right after BeginWrite()).
  void AddTap(std::unique_ptr<HashTap> tap);

 private:
  friend class BlobStore;
  BlobWriter(BlobStore& store, Digest digest, std::uint64_t expected_size,
             std::filesystem::path staging_path, UniqueFd fd, UniqueFd read_fd,
             Reservation reservation, std::vector<std::unique_ptr<HashTap>> taps);
  // Feeds the digest and the taps the next contiguous bytes.
  void Hash(std::span<const std::uint8_t> bytes);
  using Pieces = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  // Hashes the newly contiguous bytes, if no other thread is doing so.
  // `mine` are the ranges this call wrote from `data` (at `offset`).
  Result<void> AdvanceHash(std::uint64_t offset, std::span<const std::uint8_t> data,
                           const Pieces& mine);
  // Ends this writer's claim on the digest (BlobStore::EndWrite), once.
  // REQUIRES: mu_ held.
  void LetGo(std::unique_lock<std::mutex>& lock);
  // Marks the writer failed, deletes the staging file and lets the digest
  // go. REQUIRES: mu_ held.
  void MarkFailed(std::unique_lock<std::mutex>& lock);
  Result<void> VerifyLocked(std::unique_lock<std::mutex>& lock);

  BlobStore& store_;
  const Digest digest_;
  const std::uint64_t expected_size_;
  const std::filesystem::path staging_path_;
  UniqueFd fd_;
  const UniqueFd read_fd_;  // what OpenReader() duplicates
  bool registered_ = true;  // GUARDED_BY(mu_): the store counts this writer as the digest's
  std::atomic<std::uint64_t> contiguous_{0};
  std::atomic<State> state_{State::kWriting};
  std::atomic<bool> verified_{false};

  mutable std::mutex mu_;
  std::map<std::uint64_t, std::uint64_t> claimed_;  // GUARDED_BY(mu_): start → end
  std::map<std::uint64_t, std::uint64_t> written_;  // GUARDED_BY(mu_)
  Hasher hasher_;                                   // touched by the hashing thread only
  std::vector<std::unique_ptr<HashTap>> taps_;      // fed with hasher_, by the hashing thread
  std::uint64_t hashed_ = 0;                        // GUARDED_BY(mu_)
  bool hashing_ = false;                            // GUARDED_BY(mu_)
  std::optional<Digest> actual_;                    // GUARDED_BY(mu_)
  Reservation reservation_;
  std::atomic<std::uint64_t> staged_{0};            // bytes written, for the store's accounting
};

}  // namespace hubcache::store
