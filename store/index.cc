#include "store/index.h"

#include "store/index_env.h"
#include "store/index_internal.h"

namespace hubcache::store {

using internal::BlobKey;
using internal::DecodeBlob;
using internal::DigestFromKey;
using internal::Txn;
using internal::kSchemaKey;

Index::Index(std::shared_ptr<internal::IndexEnv> env) : impl_(std::move(env)) {}

Index::~Index() = default;

Result<std::unique_ptr<Index>> Index::Open(const std::filesystem::path& dir) {
  auto env = internal::IndexEnv::Open(dir, internal::kMapSize);
  if (!env) return Fail(env.error());
  return std::make_unique<Index>(std::move(*env));
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

Result<std::uint64_t> Index::BlobCount() const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Count(impl_->blobs);
}

Result<void> Index::TEST_SetSchemaVersion(std::uint32_t version) {
  return impl_->Write([this, version](Txn& txn) {
    std::string value;
    internal::PutU32(value, version);
    return txn.Put(impl_->meta, kSchemaKey, value);
  });
}

}  // namespace hubcache::store
