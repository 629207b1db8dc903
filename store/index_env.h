// IndexEnv: the one LMDB environment behind Index (store/index.h) and
// BlobIndex (store/blob_index.h), with its writer thread. Internal to store/.
//
// Reads run on the caller's thread in a short read transaction. Writes are
// queued to the single writer thread, which commits them in groups: every
// queued write gets its own nested transaction (so one failure does not undo
// the others) inside one outer transaction, so a burst of writes costs one
// fsync. Last-access updates (Touch) are batched and written every few
// seconds, when many are pending, on FlushTouches() and at destruction; a
// batch that fails is logged and counted (touch_failures()), never dropped
// silently.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "core/result.h"
#include "store/digest.h"
#include "store/index.h"
#include "store/lmdb_internal.h"

namespace hubcache::store::internal {

class IndexEnv {
 public:
  static constexpr std::uint32_t kSchemaVersion = Index::kSchemaVersion;

  // Opens or creates the environment in `dir`, checks the schema version and
  // starts the writer thread. Errors: see Index::Open.
  // `map_size`: Options::index_max_bytes.
  static Result<std::shared_ptr<IndexEnv>> Open(const std::filesystem::path& dir,
                                                std::size_t map_size);
  // Writes pending touches and stops the writer thread.
  ~IndexEnv();
  IndexEnv(const IndexEnv&) = delete;
  IndexEnv& operator=(const IndexEnv&) = delete;

  using WriteFn = std::function<Result<void>(Txn&)>;
  Result<Txn> Read() const { return Txn::Begin(*env, /*read_only=*/true); }
  // Queues `fn` for the writer thread and waits for its durable commit.
  Result<void> Write(WriteFn fn);

  // Last-access updates, batched (see the file comment).
  void Touch(const Digest& digest, std::int64_t when);
  Result<void> FlushTouches();
  std::uint64_t touch_failures() const { return touch_failures_.load(); }
  // Test hook: while set, every batch of touches fails as a broken write would.
  void TEST_FailTouchBatches(bool fail) { test_fail_touches_.store(fail); }

  // Stores `record` for `d`, keeping `lru` in step. The pin count is not the
  // caller's: an existing blob keeps its own, a new one counts the pins that
  // were recorded for it before it arrived. For write transactions.
  Result<void> PutBlobIn(Txn& txn, const Digest& d, const BlobRecord& record);

  std::unique_ptr<Env> env;
  MDB_dbi meta = 0;
  MDB_dbi blobs = 0;
  MDB_dbi lru = 0;
  MDB_dbi pins = 0;
  MDB_dbi files = 0;
  MDB_dbi refs = 0;
  MDB_dbi access = 0;
  MDB_dbi docs = 0;

 private:
  IndexEnv() = default;
  struct Task {
    WriteFn fn;
    std::promise<ErrorCode> done;
  };
  Result<void> ApplyTouches(Txn& txn, const std::map<Digest, std::int64_t>& batch);
  void WriterLoop();
  // One outer transaction; each task, and the batch of touches, in a nested one.
  void Commit(std::deque<Task>& tasks, const std::map<Digest, std::int64_t>& batch);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;                  // GUARDED_BY(mu_)
  std::map<Digest, std::int64_t> touches_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                   // GUARDED_BY(mu_)
  std::thread writer_;
  std::atomic<std::uint64_t> touch_failures_{0};
  std::atomic<bool> test_fail_touches_{false};
};

}  // namespace hubcache::store::internal
