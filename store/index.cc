#include "store/index.h"

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
#include "store/lmdb_internal.h"

namespace hubcache::store {
namespace {

using internal::Txn;

constexpr std::size_t kMapSize = std::size_t{64} << 30;  // address space, not disk
constexpr unsigned kMaxDbs = 16;
constexpr std::uint8_t kBlobFormat = 1;
constexpr std::string_view kSchemaKey = "schema_version";
constexpr auto kTouchFlushInterval = std::chrono::seconds(5);
constexpr std::size_t kTouchFlushCount = 4096;

std::string BlobKey(const Digest& d) {
  std::string key;
  internal::PutU8(key, static_cast<std::uint8_t>(d.kind()));
  key.append(reinterpret_cast<const char*>(d.bytes().data()), d.bytes().size());
  return key;
}

std::optional<Digest> DigestFromKey(std::string_view key) {
  if (key.empty()) return std::nullopt;
  const auto kind = static_cast<DigestKind>(static_cast<std::uint8_t>(key[0]));
  if (kind != DigestKind::kSha256 && kind != DigestKind::kGitSha1) return std::nullopt;
  key.remove_prefix(1);
  if (key.size() != Digest::ByteSize(kind)) return std::nullopt;
  return Digest::FromBytes(kind, {reinterpret_cast<const std::uint8_t*>(key.data()), key.size()});
}

// Shifts signed seconds so that they sort correctly as unsigned big-endian.
std::uint64_t SortableTime(std::int64_t t) {
  return static_cast<std::uint64_t>(t) ^ (std::uint64_t{1} << 63);
}

std::string LruKey(std::int64_t last_access, const Digest& d) {
  std::string key;
  internal::PutU64(key, SortableTime(last_access));
  key += BlobKey(d);
  return key;
}

std::string EncodeBlob(const BlobRecord& r) {
  std::string out;
  internal::PutU8(out, kBlobFormat);
  internal::PutU64(out, r.size);
  internal::PutU64(out, static_cast<std::uint64_t>(r.created));
  internal::PutU64(out, static_cast<std::uint64_t>(r.last_access));
  internal::PutU32(out, r.pins);
  return out;
}

Result<BlobRecord> DecodeBlob(std::string_view value) {
  internal::Reader in(value);
  if (in.U8() != kBlobFormat) return Fail(Errc::kSchemaMismatch);
  BlobRecord r;
  r.size = in.U64();
  r.created = static_cast<std::int64_t>(in.U64());
  r.last_access = static_cast<std::int64_t>(in.U64());
  r.pins = in.U32();
  if (!in.done()) return Fail(core::Errc::kCorrupt);
  return r;
}

}  // namespace

struct Index::Impl {
  std::unique_ptr<internal::Env> env;
  MDB_dbi meta = 0;
  MDB_dbi blobs = 0;
  MDB_dbi lru = 0;

  // The writer thread and its queue.
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
  Result<void> PutBlobIn(Txn& txn, const Digest& d, const BlobRecord& record) {
    auto old = txn.Get(blobs, BlobKey(d));
    if (!old) return Fail(old.error());
    if (*old) {
      if (auto prev = DecodeBlob(**old)) {
        if (auto del = txn.Del(lru, LruKey(prev->last_access, d)); !del) return Fail(del.error());
      }
    }
    if (auto put = txn.Put(blobs, BlobKey(d), EncodeBlob(record)); !put) return put;
    return txn.Put(lru, LruKey(record.last_access, d), {});
  }

  Result<void> ApplyTouches(Txn& txn, const std::map<Digest, std::int64_t>& batch) {
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

  void WriterLoop() {
    auto last_flush = std::chrono::steady_clock::now();
    for (;;) {
      std::deque<Task> tasks;
      std::map<Digest, std::int64_t> batch;
      bool stop = false;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, kTouchFlushInterval, [&] {
          return stopping || !queue.empty() || touches.size() >= kTouchFlushCount;
        });
        tasks.swap(queue);
        const bool due = std::chrono::steady_clock::now() - last_flush >= kTouchFlushInterval;
        if (stopping || due || touches.size() >= kTouchFlushCount) batch.swap(touches);
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

Index::Index(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Index::~Index() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  impl_->writer.join();
}

Result<std::unique_ptr<Index>> Index::Open(const std::filesystem::path& dir) {
  auto impl = std::make_unique<Impl>();
  auto env = internal::Env::Open(dir, kMaxDbs, kMapSize);
  if (!env) return Fail(env.error());
  impl->env = std::move(*env);

  auto txn = Txn::Begin(*impl->env, /*read_only=*/false);
  if (!txn) return Fail(txn.error());
  auto meta = txn->OpenDb("meta", true);
  auto blobs = txn->OpenDb("blobs", true);
  auto lru = txn->OpenDb("lru", true);
  if (!meta || !blobs || !lru) return Fail(!meta ? meta.error() : !blobs ? blobs.error() : lru.error());
  impl->meta = *meta;
  impl->blobs = *blobs;
  impl->lru = *lru;

  auto version = txn->Get(impl->meta, kSchemaKey);
  if (!version) return Fail(version.error());
  if (*version) {
    internal::Reader in(**version);
    const std::uint32_t found = in.U32();
    if (!in.done() || found != kSchemaVersion) {
      log::Error(log::Module::kStore, "index_schema_mismatch",
                 {{"dir", dir.string()}, {"found", found}, {"expected", kSchemaVersion}});
      return Fail(Errc::kSchemaMismatch);
    }
  } else {
    std::string value;
    internal::PutU32(value, kSchemaVersion);
    if (auto put = txn->Put(impl->meta, kSchemaKey, value); !put) return Fail(put.error());
  }
  if (auto c = txn->Commit(); !c) return Fail(c.error());

  Impl* raw = impl.get();
  impl->writer = std::thread([raw] { raw->WriterLoop(); });
  return std::unique_ptr<Index>(new Index(std::move(impl)));
}

Result<std::optional<BlobRecord>> Index::GetBlob(const Digest& digest) const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  auto value = txn->Get(impl_->blobs, BlobKey(digest));
  if (!value) return Fail(value.error());
  if (!*value) return std::optional<BlobRecord>();
  auto record = DecodeBlob(**value);
  if (!record) return Fail(record.error());
  return std::optional<BlobRecord>(*record);
}

Result<void> Index::PutBlob(const Digest& digest, const BlobRecord& record) {
  return impl_->Write([this, digest, record](Txn& txn) {
    return impl_->PutBlobIn(txn, digest, record);
  });
}

Result<bool> Index::DeleteBlob(const Digest& digest) {
  bool existed = false;
  auto r = impl_->Write([this, digest, &existed](Txn& txn) -> Result<void> {
    auto value = txn.Get(impl_->blobs, BlobKey(digest));
    if (!value) return Fail(value.error());
    if (!*value) return {};
    existed = true;
    if (auto record = DecodeBlob(**value)) {
      if (auto d = txn.Del(impl_->lru, LruKey(record->last_access, digest)); !d) {
        return Fail(d.error());
      }
    }
    if (auto d = txn.Del(impl_->blobs, BlobKey(digest)); !d) return Fail(d.error());
    return {};
  });
  if (!r) return Fail(r.error());
  return existed;
}

Result<void> Index::AddPins(const Digest& digest, std::int32_t delta) {
  return impl_->Write([this, digest, delta](Txn& txn) -> Result<void> {
    auto value = txn.Get(impl_->blobs, BlobKey(digest));
    if (!value) return Fail(value.error());
    if (!*value) return {};
    auto record = DecodeBlob(**value);
    if (!record) return Fail(record.error());
    const std::int64_t pins = static_cast<std::int64_t>(record->pins) + delta;
    record->pins = static_cast<std::uint32_t>(std::max<std::int64_t>(0, pins));
    return txn.Put(impl_->blobs, BlobKey(digest), EncodeBlob(*record));
  });
}

Result<void> Index::ForEachBlob(
    const std::function<bool(const Digest&, const BlobRecord&)>& fn) const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Scan(impl_->blobs, {}, [&](std::string_view key, std::string_view value) {
    auto digest = DigestFromKey(key);
    auto record = DecodeBlob(value);
    if (!digest || !record) return true;  // unreadable entries are verify's business
    return fn(*digest, *record);
  });
}

Result<void> Index::ForEachByAge(
    const std::function<bool(const Digest&, const BlobRecord&)>& fn) const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Scan(impl_->lru, {}, [&](std::string_view key, std::string_view) {
    if (key.size() < 8) return true;
    auto digest = DigestFromKey(key.substr(8));
    if (!digest) return true;
    auto value = txn->Get(impl_->blobs, BlobKey(*digest));
    if (!value || !*value) return true;
    auto record = DecodeBlob(**value);
    if (!record) return true;
    return fn(*digest, *record);
  });
}

Result<std::uint64_t> Index::BlobCount() const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Count(impl_->blobs);
}

void Index::Touch(const Digest& digest, std::int64_t when) {
  bool wake = false;
  {
    std::lock_guard lock(impl_->mu);
    auto [it, inserted] = impl_->touches.emplace(digest, when);
    if (!inserted && it->second < when) it->second = when;
    wake = impl_->touches.size() >= kTouchFlushCount;
  }
  if (wake) impl_->cv.notify_one();
}

Result<void> Index::Flush() {
  std::map<Digest, std::int64_t> batch;
  {
    std::lock_guard lock(impl_->mu);
    batch.swap(impl_->touches);
  }
  if (batch.empty()) return {};
  return impl_->Write([this, batch = std::move(batch)](Txn& txn) {
    return impl_->ApplyTouches(txn, batch);
  });
}

Result<void> Index::TEST_SetSchemaVersion(std::uint32_t version) {
  return impl_->Write([this, version](Txn& txn) {
    std::string value;
    internal::PutU32(value, version);
    return txn.Put(impl_->meta, kSchemaKey, value);
  });
}

}  // namespace hubcache::store
