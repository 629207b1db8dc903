// Internals of Index shared by its implementation files (index.cc for the
// core and blobs, index_meta.cc for files, refs, access, docs and pins).
// Internal to store/.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "core/errc.h"
#include "core/log.h"
#include "store/codec_internal.h"
#include "store/errc.h"
#include "store/index.h"
#include "store/lmdb_internal.h"

namespace hubcache::store {
namespace internal {

inline constexpr std::size_t kMapSize = std::size_t{64} << 30;  // address space, not disk
inline constexpr unsigned kMaxDbs = 16;
inline constexpr std::uint8_t kBlobFormat = 1;
inline constexpr std::string_view kSchemaKey = "schema_version";
inline constexpr auto kTouchFlushInterval = std::chrono::seconds(5);
inline constexpr std::size_t kTouchFlushCount = 4096;

inline std::string BlobKey(const Digest& d) {
  std::string key;
  PutU8(key, static_cast<std::uint8_t>(d.kind()));
  key.append(reinterpret_cast<const char*>(d.bytes().data()), d.bytes().size());
  return key;
}

inline std::optional<Digest> DigestFromKey(std::string_view key) {
  if (key.empty()) return std::nullopt;
  const auto kind = static_cast<DigestKind>(static_cast<std::uint8_t>(key[0]));
  if (kind != DigestKind::kSha256 && kind != DigestKind::kGitSha1) return std::nullopt;
  key.remove_prefix(1);
  if (key.size() != Digest::ByteSize(kind)) return std::nullopt;
  return Digest::FromBytes(kind, {reinterpret_cast<const std::uint8_t*>(key.data()), key.size()});
}

// Shifts signed seconds so that they sort correctly as unsigned big-endian.
inline std::uint64_t SortableTime(std::int64_t t) {
  return static_cast<std::uint64_t>(t) ^ (std::uint64_t{1} << 63);
}

inline std::string LruKey(std::int64_t last_access, const Digest& d) {
  std::string key;
  PutU64(key, SortableTime(last_access));
  key += BlobKey(d);
  return key;
}

inline std::string EncodeBlob(const BlobRecord& r) {
  std::string out;
  PutU8(out, kBlobFormat);
  PutU64(out, r.size);
  PutU64(out, static_cast<std::uint64_t>(r.created));
  PutU64(out, static_cast<std::uint64_t>(r.last_access));
  PutU32(out, r.pins);
  return out;
}

inline Result<BlobRecord> DecodeBlob(std::string_view value) {
  Reader in(value);
  if (in.U8() != kBlobFormat) return Fail(Errc::kSchemaMismatch);
  BlobRecord r;
  r.size = in.U64();
  r.created = static_cast<std::int64_t>(in.U64());
  r.last_access = static_cast<std::int64_t>(in.U64());
  r.pins = in.U32();
  if (!in.done()) return Fail(core::Errc::kCorrupt);
  return r;
}

}  // namespace internal

struct Index::Impl {
  std::unique_ptr<internal::Env> env;
  MDB_dbi meta = 0;
  MDB_dbi blobs = 0;
  MDB_dbi lru = 0;
  MDB_dbi pins = 0;
  MDB_dbi files = 0;
  MDB_dbi refs = 0;
  MDB_dbi access = 0;
  MDB_dbi docs = 0;

  // The writer thread and its queue.
  using Txn = internal::Txn;
  using WriteFn = std::function<Result<void>(Txn&)>;
  struct Task {
    WriteFn fn;
    std::promise<ErrorCode> done;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> queue;                      // GUARDED_BY(mu)
  std::map<Digest, std::int64_t> touches;      // GUARDED_BY(mu)
  bool stopping = false;                       // GUARDED_BY(mu)
  std::thread writer;

  Result<Txn> Read() const { return Txn::Begin(*env, /*read_only=*/true); }

  // Queues `fn` for the writer thread and waits for its durable commit.
  Result<void> Write(WriteFn fn) {
    std::future<ErrorCode> result;
    {
      std::lock_guard lock(mu);
      queue.push_back(Task{std::move(fn), {}});
      result = queue.back().done.get_future();
    }
    cv.notify_one();
    const ErrorCode ec = result.get();
    if (ec) return Fail(ec);
    return {};
  }

  // Moves an existing blob's lru entry and stores its new record.
  // Stores `record` for `d`, keeping `lru` in step. The pin count is not the
  // caller's: an existing blob keeps its own, a new one counts the pins that
  // were recorded for it before it arrived.
  Result<void> PutBlobIn(Txn& txn, const Digest& d, const BlobRecord& record) {
    BlobRecord stored = record;
    auto old = txn.Get(blobs, internal::BlobKey(d));
    if (!old) return Fail(old.error());
    if (*old) {
      if (auto prev = internal::DecodeBlob(**old)) {
        stored.pins = prev->pins;
        if (auto del = txn.Del(lru, internal::LruKey(prev->last_access, d)); !del) {
          return Fail(del.error());
        }
      }
    } else {
      stored.pins = 0;
      auto scan = txn.Scan(pins, internal::BlobKey(d), [&](std::string_view, std::string_view) {
        ++stored.pins;
        return true;
      });
      if (!scan) return scan;
    }
    if (auto put = txn.Put(blobs, internal::BlobKey(d), internal::EncodeBlob(stored)); !put) {
      return put;
    }
    return txn.Put(lru, internal::LruKey(stored.last_access, d), {});
  }

  Result<void> ApplyTouches(Txn& txn, const std::map<Digest, std::int64_t>& batch) {
    for (const auto& [digest, when] : batch) {
      auto value = txn.Get(blobs, internal::BlobKey(digest));
      if (!value) return Fail(value.error());
      if (!*value) continue;  // evicted meanwhile
      auto record = internal::DecodeBlob(**value);
      if (!record || record->last_access >= when) continue;
      BlobRecord updated = *record;
      updated.last_access = when;
      if (auto put = PutBlobIn(txn, digest, updated); !put) return put;
    }
    return {};
  }

  void WriterLoop() {
    auto last_flush = std::chrono::steady_clock::now();
    for (;;) {
      std::deque<Task> tasks;
      std::map<Digest, std::int64_t> batch;
      bool stop = false;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, internal::kTouchFlushInterval, [&] {
          return stopping || !queue.empty() || touches.size() >= internal::kTouchFlushCount;
        });
        tasks.swap(queue);
        const bool due = std::chrono::steady_clock::now() - last_flush >= internal::kTouchFlushInterval;
        if (stopping || due || touches.size() >= internal::kTouchFlushCount) batch.swap(touches);
        stop = stopping && tasks.empty();
      }
      if (!tasks.empty() || !batch.empty()) {
        Commit(tasks, batch);
        last_flush = std::chrono::steady_clock::now();
      }
      if (stop) return;
    }
  }

  // One outer transaction; each task in a nested one.
  void Commit(std::deque<Task>& tasks, const std::map<Digest, std::int64_t>& batch) {
    std::vector<ErrorCode> results(tasks.size());
    ErrorCode outer_ec;
    auto outer = Txn::Begin(*env, /*read_only=*/false);
    if (!outer) {
      outer_ec = outer.error();
    } else {
      for (std::size_t i = 0; i < tasks.size(); ++i) {
        MDB_txn* child = nullptr;
        int rc = mdb_txn_begin(env->get(), outer->get(), 0, &child);
        if (rc != 0) {
          results[i] = internal::LmdbError(rc);
          continue;
        }
        Txn nested = Txn::Adopt(child);
        auto r = tasks[i].fn(nested);
        if (!r) {
          results[i] = r.error();
          continue;  // ~Txn aborts the child only
        }
        if (auto c = nested.Commit(); !c) results[i] = c.error();
      }
      if (!batch.empty()) {
        MDB_txn* child = nullptr;
        if (mdb_txn_begin(env->get(), outer->get(), 0, &child) == 0) {
          Txn nested = Txn::Adopt(child);
          if (ApplyTouches(nested, batch)) (void)nested.Commit();
        }
      }
      if (auto c = outer->Commit(); !c) outer_ec = c.error();
    }
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      tasks[i].done.set_value(outer_ec ? outer_ec : results[i]);
    }
  }
};

}  // namespace hubcache::store
