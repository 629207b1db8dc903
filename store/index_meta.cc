// Index: pins, files, refs, access facts and API documents.
#include <algorithm>

#include "store/index.h"
#include "store/index_env.h"
#include "store/index_internal.h"

namespace hubcache::store {
namespace {

using internal::BlobKey;
using internal::DecodeBlob;
using internal::DigestFromKey;
using internal::EncodeBlob;
using internal::PutBytes;
using internal::PutU32;
using internal::PutU64;
using internal::PutU8;
using internal::Reader;
using internal::Txn;

constexpr std::size_t kMaxKey = 511;  // LMDB's default MDB_MAXKEYSIZE
constexpr std::uint8_t kFormat = 1;
constexpr std::uint8_t kHashedTail = 0x01;

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

std::string RepoPrefix(const RepoId& repo) {
  std::string key;
  PutU8(key, static_cast<std::uint8_t>(repo.type));
  key += repo.name;
  key += '\0';
  return key;
}

// `prefix` + `tail`, or `prefix` + 0x01 + sha256(tail) when that would be too
// long for LMDB. The full tail is always stored in the value too.
std::string KeyWithTail(std::string prefix, std::string_view tail) {
  if (prefix.size() + tail.size() <= kMaxKey) return prefix.append(tail);
  const Digest h = HashBytes(DigestKind::kSha256, tail);
  PutU8(prefix, kHashedTail);
  prefix.append(reinterpret_cast<const char*>(h.bytes().data()), h.bytes().size());
  return prefix;
}

std::string CommitPrefix(const RepoId& repo, std::string_view commit) {
  std::string key = RepoPrefix(repo);
  key += commit;
  key += '\0';
  return key;
}

std::string EncodeFile(std::string_view path, const FileRecord& r) {
  std::string out;
  PutU8(out, kFormat);
  PutU8(out, static_cast<std::uint8_t>((r.exists ? 1 : 0) | (r.lfs ? 2 : 0) |
                                       (r.digest ? 4 : 0)));
  if (r.digest) {
    PutU8(out, static_cast<std::uint8_t>(r.digest->kind()));
    out.append(reinterpret_cast<const char*>(r.digest->bytes().data()), r.digest->bytes().size());
  }
  PutU64(out, r.size);
  PutBytes(out, path);
  return out;
}

// Decodes a file value; the path it was stored under goes to `path`.
std::optional<FileRecord> DecodeFile(std::string_view value, std::string* path) {
  Reader in(value);
  if (in.U8() != kFormat) return std::nullopt;
  const std::uint8_t flags = in.U8();
  FileRecord r;
  r.exists = flags & 1;
  r.lfs = flags & 2;
  if (flags & 4) {
    const auto kind = static_cast<DigestKind>(in.U8());
    if (kind != DigestKind::kSha256 && kind != DigestKind::kGitSha1) return std::nullopt;
    std::string_view rest = in.Rest();
    const std::size_t n = Digest::ByteSize(kind);
    if (rest.size() < n) return std::nullopt;
    r.digest = Digest::FromBytes(kind, {reinterpret_cast<const std::uint8_t*>(rest.data()), n});
    in = Reader(rest.substr(n));
  }
  r.size = in.U64();
  const std::string_view stored_path = in.Bytes();
  if (!in.done()) return std::nullopt;
  if (path != nullptr) *path = std::string(stored_path);
  return r;
}

std::string EncodeRef(std::string_view revision, const RefRecord& r) {
  std::string out;
  PutU8(out, kFormat);
  PutBytes(out, r.commit);
  PutU64(out, static_cast<std::uint64_t>(r.fetched_at));
  PutBytes(out, revision);
  return out;
}

std::optional<RefRecord> DecodeRef(std::string_view value, std::string* revision) {
  Reader in(value);
  if (in.U8() != kFormat) return std::nullopt;
  RefRecord r;
  r.commit = std::string(in.Bytes());
  r.fetched_at = static_cast<std::int64_t>(in.U64());
  const std::string_view rev = in.Bytes();
  if (!in.done()) return std::nullopt;
  if (revision != nullptr) *revision = std::string(rev);
  return r;
}

std::string EncodeDoc(std::string_view request, const DocRecord& r) {
  std::string out;
  PutU8(out, kFormat);
  PutU64(out, static_cast<std::uint64_t>(r.stored_at));
  PutBytes(out, request);
  PutU32(out, static_cast<std::uint32_t>(r.headers.size()));
  for (const auto& [name, value] : r.headers) {
    PutBytes(out, name);
    PutBytes(out, value);
  }
  PutBytes(out, r.body);
  return out;
}

std::optional<DocRecord> DecodeDoc(std::string_view value, std::string* request) {
  Reader in(value);
  if (in.U8() != kFormat) return std::nullopt;
  DocRecord r;
  r.stored_at = static_cast<std::int64_t>(in.U64());
  const std::string_view req = in.Bytes();
  const std::uint32_t n = in.U32();
  for (std::uint32_t i = 0; i < n && in.ok(); ++i) {
    std::string name(in.Bytes());
    std::string header_value(in.Bytes());
    r.headers.emplace_back(std::move(name), std::move(header_value));
  }
  r.body = std::string(in.Bytes());
  if (!in.done()) return std::nullopt;
  if (request != nullptr) *request = std::string(req);
  return r;
}

std::string AccessKey(const RepoId& repo) { return "R" + RepoPrefix(repo); }

std::string GrantKey(const TokenId& token, const RepoId& repo) {
  std::string key = "G";
  key.append(reinterpret_cast<const char*>(token.data()), token.size());
  return key + RepoPrefix(repo);
}

std::string PinKey(const Digest& d, std::string_view name) { return BlobKey(d) + std::string(name); }

// Adds `delta` to a blob's pin count, if the blob is indexed.
Result<void> AdjustPins(Txn& txn, MDB_dbi blobs, const Digest& digest, std::int64_t delta) {
  auto value = txn.Get(blobs, BlobKey(digest));
  if (!value) return Fail(value.error());
  if (!*value) return {};
  auto record = DecodeBlob(**value);
  if (!record) return Fail(record.error());
  record->pins = static_cast<std::uint32_t>(
      std::max<std::int64_t>(0, static_cast<std::int64_t>(record->pins) + delta));
  return txn.Put(blobs, BlobKey(digest), EncodeBlob(*record));
}

}  // namespace

// ------------------------------------------------------------------- pins

Result<void> Index::Pin(std::string_view name, const std::vector<Digest>& digests) {
  if (name.empty() || HasNul(name)) return Fail(core::Errc::kInvalidArgument);
  return impl_->Write([this, name = std::string(name), digests](Txn& txn) -> Result<void> {
    for (const Digest& d : digests) {
      const std::string key = PinKey(d, name);
      auto existing = txn.Get(impl_->pins, key);
      if (!existing) return Fail(existing.error());
      if (*existing) continue;
      if (auto put = txn.Put(impl_->pins, key, {}); !put) return put;
      if (auto adj = AdjustPins(txn, impl_->blobs, d, 1); !adj) return adj;
    }
    return {};
  });
}

Result<std::uint64_t> Index::Unpin(std::string_view name) {
  std::uint64_t removed = 0;
  auto r = impl_->Write([this, name = std::string(name), &removed](Txn& txn) -> Result<void> {
    std::vector<std::pair<std::string, Digest>> doomed;
    auto scan = txn.Scan(impl_->pins, {}, [&](std::string_view key, std::string_view) {
      if (key.empty()) return true;
      const auto kind = static_cast<DigestKind>(static_cast<std::uint8_t>(key[0]));
      if (kind != DigestKind::kSha256 && kind != DigestKind::kGitSha1) return true;
      const std::size_t n = 1 + Digest::ByteSize(kind);
      if (key.size() < n || key.substr(n) != name) return true;
      if (auto d = DigestFromKey(key.substr(0, n))) doomed.emplace_back(std::string(key), *d);
      return true;
    });
    if (!scan) return scan;
    for (const auto& [key, digest] : doomed) {
      if (auto del = txn.Del(impl_->pins, key); !del) return Fail(del.error());
      if (auto adj = AdjustPins(txn, impl_->blobs, digest, -1); !adj) return adj;
    }
    removed = doomed.size();
    return {};
  });
  if (!r) return Fail(r.error());
  return removed;
}

Result<void> Index::ForEachPin(
    const std::function<bool(std::string_view, const Digest&)>& fn) const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Scan(impl_->pins, {}, [&](std::string_view key, std::string_view) {
    if (key.empty()) return true;
    const auto kind = static_cast<DigestKind>(static_cast<std::uint8_t>(key[0]));
    if (kind != DigestKind::kSha256 && kind != DigestKind::kGitSha1) return true;
    const std::size_t n = 1 + Digest::ByteSize(kind);
    auto digest = key.size() >= n ? DigestFromKey(key.substr(0, n)) : std::nullopt;
    return digest ? fn(key.substr(n), *digest) : true;
  });
}

// ------------------------------------------------------------------ files

Result<void> Index::PutFile(const RepoId& repo, std::string_view commit, std::string_view path,
                            const FileRecord& record) {
  if (HasNul(repo.name) || HasNul(commit) || HasNul(path)) {
    return Fail(core::Errc::kInvalidArgument);
  }
  std::string key = KeyWithTail(CommitPrefix(repo, commit), path);
  std::string value = EncodeFile(path, record);
  return impl_->Write([this, key = std::move(key), value = std::move(value)](Txn& txn) {
    return txn.Put(impl_->files, key, value);
  });
}

Result<std::optional<FileRecord>> Index::GetFile(const RepoId& repo, std::string_view commit,
                                                 std::string_view path) const {
  if (HasNul(repo.name) || HasNul(commit) || HasNul(path)) {
    return Fail(core::Errc::kInvalidArgument);
  }
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  auto value = txn->Get(impl_->files, KeyWithTail(CommitPrefix(repo, commit), path));
  if (!value) return Fail(value.error());
  if (!*value) return std::optional<FileRecord>();
  std::string stored_path;
  auto record = DecodeFile(**value, &stored_path);
  if (!record || stored_path != path) return std::optional<FileRecord>();
  return record;
}

Result<void> Index::ForEachFile(
    const RepoId& repo, std::string_view commit,
    const std::function<bool(std::string_view, const FileRecord&)>& fn) const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Scan(impl_->files, CommitPrefix(repo, commit),
                   [&](std::string_view, std::string_view value) {
                     std::string path;
                     auto record = DecodeFile(value, &path);
                     return record ? fn(path, *record) : true;
                   });
}

// ------------------------------------------------------------------- refs

Result<void> Index::PutRef(const RepoId& repo, std::string_view revision,
                           const RefRecord& record) {
  if (HasNul(repo.name) || HasNul(revision)) return Fail(core::Errc::kInvalidArgument);
  std::string key = KeyWithTail(RepoPrefix(repo), revision);
  std::string value = EncodeRef(revision, record);
  return impl_->Write([this, key = std::move(key), value = std::move(value)](Txn& txn) {
    return txn.Put(impl_->refs, key, value);
  });
}

Result<std::optional<RefRecord>> Index::GetRef(const RepoId& repo,
                                               std::string_view revision) const {
  if (HasNul(repo.name) || HasNul(revision)) return Fail(core::Errc::kInvalidArgument);
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  auto value = txn->Get(impl_->refs, KeyWithTail(RepoPrefix(repo), revision));
  if (!value) return Fail(value.error());
  if (!*value) return std::optional<RefRecord>();
  std::string stored;
  auto record = DecodeRef(**value, &stored);
  if (!record || stored != revision) return std::optional<RefRecord>();
  return record;
}

Result<void> Index::ForEachRef(
    const std::function<bool(const RepoId&, std::string_view, const RefRecord&)>& fn) const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Scan(impl_->refs, {}, [&](std::string_view key, std::string_view value) {
    const std::size_t nul = key.find('\0');
    if (key.empty() || nul == std::string_view::npos) return true;
    RepoId repo{static_cast<RepoType>(static_cast<std::uint8_t>(key[0])),
                std::string(key.substr(1, nul - 1))};
    std::string revision;
    auto record = DecodeRef(value, &revision);
    return record ? fn(repo, revision, *record) : true;
  });
}

// ----------------------------------------------------------------- access

Result<void> Index::PutAccess(const RepoId& repo, const AccessRecord& record) {
  if (HasNul(repo.name)) return Fail(core::Errc::kInvalidArgument);
  std::string value;
  PutU8(value, kFormat);
  PutU8(value, static_cast<std::uint8_t>(record.visibility));
  PutU64(value, static_cast<std::uint64_t>(record.checked_at));
  return impl_->Write([this, key = AccessKey(repo), value = std::move(value)](Txn& txn) {
    return txn.Put(impl_->access, key, value);
  });
}

Result<std::optional<AccessRecord>> Index::GetAccess(const RepoId& repo) const {
  if (HasNul(repo.name)) return Fail(core::Errc::kInvalidArgument);
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  auto value = txn->Get(impl_->access, AccessKey(repo));
  if (!value) return Fail(value.error());
  if (!*value) return std::optional<AccessRecord>();
  Reader in(**value);
  AccessRecord r;
  const std::uint8_t format = in.U8();
  r.visibility = static_cast<Visibility>(in.U8());
  r.checked_at = static_cast<std::int64_t>(in.U64());
  if (format != kFormat || !in.done() ||
      (r.visibility != Visibility::kPublic && r.visibility != Visibility::kRestricted)) {
    return std::optional<AccessRecord>();  // unreadable: as if never checked
  }
  return std::optional<AccessRecord>(r);
}

Result<void> Index::PutGrant(const TokenId& token, const RepoId& repo, std::int64_t expires_at) {
  if (HasNul(repo.name)) return Fail(core::Errc::kInvalidArgument);
  std::string value;
  PutU8(value, kFormat);
  PutU64(value, static_cast<std::uint64_t>(expires_at));
  return impl_->Write([this, key = GrantKey(token, repo), value = std::move(value)](Txn& txn) {
    return txn.Put(impl_->access, key, value);
  });
}

Result<std::optional<std::int64_t>> Index::GetGrant(const TokenId& token,
                                                    const RepoId& repo) const {
  if (HasNul(repo.name)) return Fail(core::Errc::kInvalidArgument);
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  auto value = txn->Get(impl_->access, GrantKey(token, repo));
  if (!value) return Fail(value.error());
  if (!*value) return std::optional<std::int64_t>();
  Reader in(**value);
  const std::uint8_t format = in.U8();
  const auto expires = static_cast<std::int64_t>(in.U64());
  if (format != kFormat || !in.done()) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(expires);
}

// ------------------------------------------------------------------- docs

Result<void> Index::PutDoc(const RepoId& repo, std::string_view commit, std::string_view request,
                           const DocRecord& record) {
  if (HasNul(repo.name) || HasNul(commit) || HasNul(request)) {
    return Fail(core::Errc::kInvalidArgument);
  }
  std::string key = KeyWithTail(CommitPrefix(repo, commit), request);
  std::string value = EncodeDoc(request, record);
  return impl_->Write([this, key = std::move(key), value = std::move(value)](Txn& txn) {
    return txn.Put(impl_->docs, key, value);
  });
}

Result<std::optional<DocRecord>> Index::GetDoc(const RepoId& repo, std::string_view commit,
                                               std::string_view request) const {
  if (HasNul(repo.name) || HasNul(commit) || HasNul(request)) {
    return Fail(core::Errc::kInvalidArgument);
  }
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  auto value = txn->Get(impl_->docs, KeyWithTail(CommitPrefix(repo, commit), request));
  if (!value) return Fail(value.error());
  if (!*value) return std::optional<DocRecord>();
  std::string stored;
  auto record = DecodeDoc(**value, &stored);
  if (!record || stored != request) return std::optional<DocRecord>();
  return record;
}

Result<void> Index::ForEachDoc(
    const RepoId& repo, std::string_view revision,
    const std::function<bool(std::string_view, const DocRecord&)>& fn) const {
  if (HasNul(repo.name) || HasNul(revision)) return Fail(core::Errc::kInvalidArgument);
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Scan(impl_->docs, CommitPrefix(repo, revision),
                   [&](std::string_view, std::string_view value) {
                     std::string request;
                     auto record = DecodeDoc(value, &request);
                     return record ? fn(request, *record) : true;
                   });
}

// ------------------------------------------------------------ enumeration

Result<void> Index::ForEachFileRecord(
    const std::function<bool(const RepoId&, std::string_view, std::string_view,
                             const FileRecord&)>& fn) const {
  auto txn = impl_->Read();
  if (!txn) return Fail(txn.error());
  return txn->Scan(impl_->files, {}, [&](std::string_view key, std::string_view value) {
    const std::size_t name_end = key.find('\0', 1);
    if (key.empty() || name_end == std::string_view::npos) return true;
    const std::size_t commit_end = key.find('\0', name_end + 1);
    if (commit_end == std::string_view::npos) return true;
    const RepoId repo{static_cast<RepoType>(static_cast<std::uint8_t>(key[0])),
                      std::string(key.substr(1, name_end - 1))};
    std::string path;
    auto record = DecodeFile(value, &path);
    return record ? fn(repo, key.substr(name_end + 1, commit_end - name_end - 1), path, *record)
                  : true;
  });
}

// --------------------------------------------------------------- removal

namespace {

// Deletes every entry of `dbi` whose key starts with `prefix`.
Result<std::uint64_t> DeletePrefix(Txn& txn, MDB_dbi dbi, const std::string& prefix) {
  std::vector<std::string> keys;
  auto scan = txn.Scan(dbi, prefix, [&](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return true;
  });
  if (!scan) return Fail(scan.error());
  for (const std::string& key : keys) {
    if (auto del = txn.Del(dbi, key); !del) return Fail(del.error());
  }
  return static_cast<std::uint64_t>(keys.size());
}

}  // namespace

Result<std::uint64_t> Index::DeleteRef(const RepoId& repo, std::string_view revision) {
  if (HasNul(repo.name) || HasNul(revision)) return Fail(core::Errc::kInvalidArgument);
  std::uint64_t removed = 0;
  auto r = impl_->Write([&, key = KeyWithTail(RepoPrefix(repo), revision)](Txn& txn)
                            -> Result<void> {
    auto del = txn.Del(impl_->refs, key);
    if (!del) return Fail(del.error());
    removed = *del ? 1 : 0;
    return {};
  });
  if (!r) return Fail(r.error());
  return removed;
}

Result<std::uint64_t> Index::DeleteRevisionData(const RepoId& repo, std::string_view revision) {
  if (HasNul(repo.name) || HasNul(revision)) return Fail(core::Errc::kInvalidArgument);
  std::uint64_t removed = 0;
  auto r = impl_->Write([&, prefix = CommitPrefix(repo, revision)](Txn& txn) -> Result<void> {
    for (MDB_dbi dbi : {impl_->files, impl_->docs}) {
      auto n = DeletePrefix(txn, dbi, prefix);
      if (!n) return Fail(n.error());
      removed += *n;
    }
    return {};
  });
  if (!r) return Fail(r.error());
  return removed;
}

Result<std::uint64_t> Index::DeleteRepo(const RepoId& repo) {
  if (HasNul(repo.name)) return Fail(core::Errc::kInvalidArgument);
  std::uint64_t removed = 0;
  auto r = impl_->Write([&, prefix = RepoPrefix(repo)](Txn& txn) -> Result<void> {
    for (MDB_dbi dbi : {impl_->files, impl_->docs, impl_->refs}) {
      auto n = DeletePrefix(txn, dbi, prefix);
      if (!n) return Fail(n.error());
      removed += *n;
    }
    auto access = txn.Del(impl_->access, AccessKey(repo));
    if (!access) return Fail(access.error());
    removed += *access ? 1 : 0;
    return {};
  });
  if (!r) return Fail(r.error());
  return removed;
}

}  // namespace hubcache::store
