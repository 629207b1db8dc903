#include "store/blob_index.h"

#include "store/index_env.h"
#include "store/index_internal.h"

namespace hubcache::store {

using internal::BlobKey;
using internal::DecodeBlob;
using internal::DigestFromKey;
using internal::LruKey;
using internal::Txn;

BlobIndex::BlobIndex(std::shared_ptr<internal::IndexEnv> env) : impl_(std::move(env)) {}

BlobIndex::~BlobIndex() = default;

Result<void> BlobIndex::PutBlob(const Digest& digest, const BlobRecord& record) {
  return impl_->Write([this, digest, record](Txn& txn) {
    return impl_->PutBlobIn(txn, digest, record);
  });
}

Result<bool> BlobIndex::DeleteBlob(const Digest& digest) {
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

Result<void> BlobIndex::ForEachByAge(
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

void BlobIndex::Touch(const Digest& digest, std::int64_t when) { impl_->Touch(digest, when); }

Result<void> BlobIndex::Flush() { return impl_->FlushTouches(); }

std::uint64_t BlobIndex::touch_failures() const { return impl_->touch_failures(); }

}  // namespace hubcache::store
