// Key and value codecs of the index's blob tables, shared by its
// implementation files (index_env.cc, index.cc, blob_index.cc,
// index_meta.cc). Internal to store/.
#pragma once

#include <chrono>

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

}  // namespace hubcache::store
