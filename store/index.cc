#include "store/index.h"

#include "store/index_internal.h"

namespace hubcache::store {

using internal::BlobKey;
using internal::DecodeBlob;
using internal::DigestFromKey;
using internal::EncodeBlob;
using internal::LruKey;
using internal::Txn;
using internal::kMapSize;
using internal::kMaxDbs;
using internal::kSchemaKey;
using internal::kTouchFlushCount;

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
  const std::pair<const char*, MDB_dbi*> dbs[] = {
      {"meta", &impl->meta},   {"blobs", &impl->blobs}, {"lru", &impl->lru},
      {"pins", &impl->pins},   {"files", &impl->files}, {"refs", &impl->refs},
      {"access", &impl->access}, {"docs", &impl->docs}};
  for (const auto& [name, dbi] : dbs) {
    auto opened = txn->OpenDb(name, true);
    if (!opened) return Fail(opened.error());
    *dbi = *opened;
  }

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
