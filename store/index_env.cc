#include "store/index_env.h"

#include "core/log.h"
#include "store/codec_internal.h"
#include "store/errc.h"
#include "store/index_internal.h"

namespace hubcache::store::internal {

Result<std::shared_ptr<IndexEnv>> IndexEnv::Open(const std::filesystem::path& dir,
                                                  std::size_t map_size) {
  std::shared_ptr<IndexEnv> self(new IndexEnv());
  auto env = Env::Open(dir, kMaxDbs, map_size);
  if (!env) return Fail(env.error());
  self->env = std::move(*env);

  auto txn = Txn::Begin(*self->env, /*read_only=*/false);
  if (!txn) return Fail(txn.error());
  const std::pair<const char*, MDB_dbi*> dbs[] = {
      {"meta", &self->meta},     {"blobs", &self->blobs}, {"lru", &self->lru},
      {"pins", &self->pins},     {"files", &self->files}, {"refs", &self->refs},
      {"access", &self->access}, {"docs", &self->docs}};
  for (const auto& [name, dbi] : dbs) {
    auto opened = txn->OpenDb(name, true);
    if (!opened) return Fail(opened.error());
    *dbi = *opened;
  }

  auto version = txn->Get(self->meta, kSchemaKey);
  if (!version) return Fail(version.error());
  if (*version) {
    Reader in(**version);
    const std::uint32_t found = in.U32();
    if (!in.done() || found != kSchemaVersion) {
      log::Error(log::Module::kStore, "index_schema_mismatch",
                 {{"dir", dir.string()}, {"found", found}, {"expected", kSchemaVersion}});
      return Fail(Errc::kSchemaMismatch);
    }
  } else {
    std::string value;
    PutU32(value, kSchemaVersion);
    if (auto put = txn->Put(self->meta, kSchemaKey, value); !put) return Fail(put.error());
  }
  if (auto c = txn->Commit(); !c) return Fail(c.error());

  IndexEnv* raw = self.get();
  self->writer_ = std::thread([raw] { raw->WriterLoop(); });
  return self;
}

IndexEnv::~IndexEnv() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (writer_.joinable()) writer_.join();
}

Result<void> IndexEnv::Write(WriteFn fn) {
  std::future<ErrorCode> result;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Task{std::move(fn), {}});
    result = queue_.back().done.get_future();
  }
  cv_.notify_one();
  const ErrorCode ec = result.get();
  if (ec) return Fail(ec);
  return {};
}

void IndexEnv::Touch(const Digest& digest, std::int64_t when) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = touches_.emplace(digest, when);
    if (!inserted && it->second < when) it->second = when;
    wake = touches_.size() >= kTouchFlushCount;
  }
  if (wake) cv_.notify_one();
}

Result<void> IndexEnv::FlushTouches() {
  std::map<Digest, std::int64_t> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(touches_);
  }
  if (batch.empty()) return {};
  return Write([this, batch = std::move(batch)](Txn& txn) { return ApplyTouches(txn, batch); });
}

Result<void> IndexEnv::PutBlobIn(Txn& txn, const Digest& d, const BlobRecord& record) {
  BlobRecord stored = record;
  auto old = txn.Get(blobs, BlobKey(d));
  if (!old) return Fail(old.error());
  if (*old) {
    if (auto prev = DecodeBlob(**old)) {
      stored.pins = prev->pins;
      if (auto del = txn.Del(lru, LruKey(prev->last_access, d)); !del) return Fail(del.error());
    }
  } else {
    stored.pins = 0;
    auto scan = txn.Scan(pins, BlobKey(d), [&](std::string_view, std::string_view) {
      ++stored.pins;
      return true;
    });
    if (!scan) return scan;
  }
  if (auto put = txn.Put(blobs, BlobKey(d), EncodeBlob(stored)); !put) return put;
  return txn.Put(lru, LruKey(stored.last_access, d), {});
}

Result<void> IndexEnv::ApplyTouches(Txn& txn, const std::map<Digest, std::int64_t>& batch) {
  if (test_fail_touches_.load()) return Fail(Errc::kIndexFailure);
  for (const auto& [digest, when] : batch) {
    auto value = txn.Get(blobs, BlobKey(digest));
    if (!value) return Fail(value.error());
    if (!*value) continue;  // evicted meanwhile
    auto record = DecodeBlob(**value);
    if (!record || record->last_access >= when) continue;
    BlobRecord updated = *record;
    updated.last_access = when;
    if (auto put = PutBlobIn(txn, digest, updated); !put) return put;
  }
  return {};
}

void IndexEnv::WriterLoop() {
  auto last_flush = std::chrono::steady_clock::now();
  for (;;) {
    std::deque<Task> tasks;
    std::map<Digest, std::int64_t> batch;
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kTouchFlushInterval, [&] {
        return stopping_ || !queue_.empty() || touches_.size() >= kTouchFlushCount;
      });
      tasks.swap(queue_);
      const bool due = std::chrono::steady_clock::now() - last_flush >= kTouchFlushInterval;
      if (stopping_ || due || touches_.size() >= kTouchFlushCount) batch.swap(touches_);
      stop = stopping_ && tasks.empty();
    }
    if (!tasks.empty() || !batch.empty()) {
      Commit(tasks, batch);
      last_flush = std::chrono::steady_clock::now();
    }
    if (stop) return;
  }
}

void IndexEnv::Commit(std::deque<Task>& tasks, const std::map<Digest, std::int64_t>& batch) {
  std::vector<ErrorCode> results(tasks.size());
  ErrorCode outer_ec;
  ErrorCode touches_ec;
  auto outer = Txn::Begin(*env, /*read_only=*/false);
  if (!outer) {
    outer_ec = outer.error();
  } else {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      MDB_txn* child = nullptr;
      int rc = mdb_txn_begin(env->get(), outer->get(), 0, &child);
      if (rc != 0) {
        results[i] = LmdbError(rc);
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
      if (int rc = mdb_txn_begin(env->get(), outer->get(), 0, &child); rc != 0) {
        touches_ec = LmdbError(rc);
      } else {
        Txn nested = Txn::Adopt(child);
        if (auto applied = ApplyTouches(nested, batch); !applied) {
          touches_ec = applied.error();
        } else if (auto c = nested.Commit(); !c) {
          touches_ec = c.error();
        }
      }
    }
    if (auto c = outer->Commit(); !c) outer_ec = c.error();
  }
  if (!batch.empty() && (touches_ec || outer_ec)) {
    // Last-access times only order eviction; losing a batch makes those blobs
    // look older than they are. Worth an operator's notice when it repeats.
    touch_failures_.fetch_add(1, std::memory_order_relaxed);
    log::Warn(log::Module::kStore, "touch_batch_failed",
              {{"blobs", batch.size()}, {"error", (touches_ec ? touches_ec : outer_ec).message()}});
  }
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    tasks[i].done.set_value(outer_ec ? outer_ec : results[i]);
  }
}

}  // namespace hubcache::store::internal
