#include "store/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "core/check.h"
#include "core/clock.h"
#include "core/errc.h"
#include "core/log.h"
#include "store/blob_index.h"
#include "store/errc.h"
#include "store/fsck.h"
#include "store/index_env.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using Extents = std::map<std::uint64_t, std::uint64_t>;  // start → end, disjoint
constexpr std::size_t kHashReadChunk = 1 << 20;

// Eviction may take a blob that no pin holds.
bool Evictable(const BlobRecord& record) { return record.pins == 0; }

// The parts of [start, end) not covered by `extents`.
std::vector<std::pair<std::uint64_t, std::uint64_t>> Uncovered(const Extents& extents,
                                                               std::uint64_t start,
                                                               std::uint64_t end) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  auto it = extents.upper_bound(start);
  if (it != extents.begin()) {
    auto prev = std::prev(it);
    if (prev->second > start) start = prev->second;
  }
  for (; start < end; ++it) {
    if (it == extents.end() || it->first >= end) {
      out.emplace_back(start, end);
      break;
    }
    if (it->first > start) out.emplace_back(start, it->first);
    start = std::max(start, it->second);
  }
  return out;
}

// Adds [start, end), merging with neighbours.
void Insert(Extents& extents, std::uint64_t start, std::uint64_t end) {
  if (start >= end) return;
  auto it = extents.upper_bound(start);
  if (it != extents.begin() && std::prev(it)->second >= start) {
    --it;
    start = it->first;
    end = std::max(end, it->second);
    it = extents.erase(it);
  }
  while (it != extents.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = extents.erase(it);
  }
  extents.emplace(start, end);
}

// Removes [start, end) exactly as it was inserted (a claimed piece).
void Remove(Extents& extents, std::uint64_t start, std::uint64_t end) {
  auto it = extents.upper_bound(start);
  if (it == extents.begin()) return;
  --it;
  const std::uint64_t s = it->first;
  const std::uint64_t e = it->second;
  if (e <= start) return;
  extents.erase(it);
  if (s < start) extents.emplace(s, start);
  if (end < e) extents.emplace(end, e);
}

}  // namespace

// ---------------------------------------------------------------- BlobStore

BlobStore::BlobStore(fs::path root, const Options& options, std::unique_ptr<Index> index,
                     std::unique_ptr<BlobIndex> blob_index)
    : root_(std::move(root)),
      options_(options),
      disk_(options.disk != nullptr ? *options.disk : Disk::Default()),
      index_(std::move(index)),
      blob_index_(std::move(blob_index)) {}

BlobStore::~BlobStore() = default;

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const Options& options, bool recover) {
  const fs::path root = fs::absolute(options.cache_dir);
  Disk& disk = options.disk != nullptr ? *options.disk : Disk::Default();
  for (const char* sub : {"blobs/sha256", "blobs/sha1", "staging"}) {
    if (auto made = disk.CreateDirectories(root / sub); !made) return Fail(made.error());
  }
  // One environment: the metadata Index anyone may use, and the blob records
  // only the store writes.
  auto env = internal::IndexEnv::Open(root / "index", options.index_max_bytes);
  if (!env) return Fail(env.error());
  std::unique_ptr<BlobStore> store(new BlobStore(root, options, std::make_unique<Index>(*env),
                                                 std::make_unique<BlobIndex>(*env)));
  if (recover) {
    auto report = Fsck(*store, FsckMode::kRecover);
    if (!report) return Fail(report.error());
    log::Info(log::Module::kStore, "store_opened",
              {{"blobs", report->blobs_checked},
               {"dropped", report->missing + report->wrong_size},
               {"adopted", report->adopted},
               {"orphans_removed", report->orphans},
               {"staging_removed", report->staging_removed}});
  }
  std::uint64_t used = 0;
  auto sum = store->index_->ForEachBlob([&](const Digest&, const BlobRecord& r) {
    used += r.size;
    return true;
  });
  if (!sum) return Fail(sum.error());
  store->used_ = used;
  return store;
}

fs::path BlobStore::BlobPath(const Digest& digest) const { return BlobPathIn(root_, digest); }

fs::path BlobStore::BlobPathIn(const fs::path& cache_dir, const Digest& digest) {
  // Built as one string: on a cache hit this runs per request, and chained
  // path concatenations cost more than the open(2) itself.
  const std::string hex = digest.Hex();
  const std::string& root = cache_dir.native();
  std::string path;
  path.reserve(root.size() + 16 + hex.size() + 4);
  path += root;
  if (path.empty() || path.back() != '/') path += '/';
  path += "blobs/";
  path += digest.KindName();
  path += '/';
  path.append(hex, 0, 2);
  path += '/';
  path += hex;
  return fs::path(std::move(path));
}

Result<BlobStore::Blob> BlobStore::Lookup(const Digest& digest) {
  auto record = index_->GetBlob(digest);
  if (!record) return Fail(record.error());
  if (!*record) return Fail(core::Errc::kNotFound);
  auto fd = disk_.Open(BlobPath(digest), O_RDONLY);
  if (!fd) {
    if (fd.error() == boost::system::errc::no_such_file_or_directory) {
      log::Warn(log::Module::kStore, "blob_file_missing", {{"digest", digest.Hex()}});
      return Fail(core::Errc::kNotFound);
    }
    return Fail(fd.error());
  }
  auto on_disk = disk_.FileSize(fd->get());
  if (!on_disk) return Fail(on_disk.error());
  if (*on_disk != (*record)->size) {
    log::Error(log::Module::kStore, "blob_size_mismatch",
               {{"digest", digest.Hex()}, {"indexed", (*record)->size}, {"on_disk", *on_disk}});
    return Fail(core::Errc::kCorrupt);
  }
  blob_index_->Touch(digest, core::UnixSeconds());
  return Blob{(*record)->size, std::move(*fd)};
}

Result<std::optional<BlobRecord>> BlobStore::GetBlob(const Digest& digest) const {
  return index_->GetBlob(digest);
}

void BlobStore::Touch(const Digest& digest) { blob_index_->Touch(digest, core::UnixSeconds()); }

Result<std::uint64_t> BlobStore::BlobCount() const { return index_->BlobCount(); }

std::uint64_t BlobStore::touch_failures() const { return blob_index_->touch_failures(); }

void BlobStore::AddObserver(BlobObserver* observer) {
  std::lock_guard lock(observers_mu_);
  observers_.push_back(observer);
}

void BlobStore::RemoveObserver(BlobObserver* observer) {
  std::lock_guard lock(observers_mu_);
  std::erase(observers_, observer);
}

void BlobStore::AddHashTap(HashTapFactory factory) {
  std::lock_guard lock(observers_mu_);
  tap_factories_.push_back(std::move(factory));
}

std::vector<BlobObserver*> BlobStore::Observers() const {
  std::lock_guard lock(observers_mu_);
  return observers_;
}

void BlobStore::NotifyCommitted(const CommittedBlob& blob) const {
  for (BlobObserver* observer : Observers()) observer->OnCommitted(blob);
}

void BlobStore::NotifyRemoving(const Digest& digest) const {
  for (BlobObserver* observer : Observers()) observer->OnRemoving(digest);
}

std::vector<std::unique_ptr<HashTap>> BlobStore::MakeTaps(const Digest& digest,
                                                          std::uint64_t size) const {
  std::vector<std::unique_ptr<HashTap>> taps;
  std::lock_guard lock(observers_mu_);
  for (const auto& factory : tap_factories_) {
    if (auto tap = factory(digest, size)) taps.push_back(std::move(tap));
  }
  return taps;
}

Result<std::unique_ptr<BlobWriter>> BlobStore::BeginWrite(const Digest& digest,
                                                          std::uint64_t expected_size) {
  auto existing = index_->GetBlob(digest);
  if (!existing) return Fail(existing.error());
  if (*existing) return Fail(core::Errc::kAlreadyExists);
  {
    std::lock_guard lock(mu_);
    if (!writing_.insert(digest).second) return Fail(Errc::kBusy);
  }
  auto reservation = Reserve(expected_size);
  if (!reservation) {
    EndWrite(digest);
    return Fail(reservation.error());
  }
  const fs::path staging =
      root_ / "staging" / (std::string(digest.KindName()) + "-" + digest.Hex() + ".part");
  auto fd = disk_.Open(staging, O_RDWR | O_CREAT | O_TRUNC, 0640);
  // Readers' descriptors come from this one (BlobWriter::OpenReader): the
  // file may be renamed or unlinked by the time a reader asks.
  Result<UniqueFd> read_fd = Fail(core::Errc::kUnavailable);
  if (fd) read_fd = disk_.Open(staging, O_RDONLY);
  if (!fd || !read_fd) {
    if (fd) (void)disk_.Remove(staging);
    EndWrite(digest);
    return Fail(fd ? read_fd.error() : fd.error());
  }
  return std::unique_ptr<BlobWriter>(new BlobWriter(
      *this, digest, expected_size, staging, std::move(*fd), std::move(*read_fd),
      std::move(*reservation), MakeTaps(digest, expected_size)));
}

void BlobStore::EndWrite(const Digest& digest) {
  std::lock_guard lock(mu_);
  writing_.erase(digest);
}

// ------------------------------------------------------------------- space

Reservation::Reservation(Reservation&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

Reservation& Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    if (store_ != nullptr) store_->Release(bytes_);
    store_ = std::exchange(other.store_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Reservation::~Reservation() {
  if (store_ != nullptr) store_->Release(bytes_);
}

void BlobStore::Release(std::uint64_t bytes) {
  std::lock_guard lock(space_mu_);
  reserved_ -= std::min(reserved_, bytes);
}

void BlobStore::Committed(Reservation& reservation, std::uint64_t size) {
  std::lock_guard lock(space_mu_);
  used_ += size;
  reserved_ -= std::min(reserved_, reservation.bytes_);
  reservation.store_ = nullptr;
  reservation.bytes_ = 0;
}

std::uint64_t BlobStore::used_bytes() const {
  std::lock_guard lock(space_mu_);
  return used_;
}

std::uint64_t BlobStore::reserved_bytes() const {
  std::lock_guard lock(space_mu_);
  return reserved_;
}

std::uint64_t BlobStore::Shortfall(std::uint64_t bytes) const {
  std::uint64_t shortfall = 0;
  if (options_.max_bytes > 0) {
    const std::uint64_t want = used_ + reserved_ + bytes;
    if (want > options_.max_bytes) shortfall = want - options_.max_bytes;
  }
  if (options_.min_free_percent > 0) {
    if (auto space = disk_.Space(root_)) {
      const auto total = static_cast<long double>(space->total_bytes);
      const auto floor = static_cast<std::uint64_t>(total * options_.min_free_percent / 100);
      const std::uint64_t free = space->available_bytes;
      // Downloads in flight will still take what they reserved but have not
      // written yet.
      const std::uint64_t staged = staged_.load();
      const std::uint64_t pending = reserved_ > staged ? reserved_ - staged : 0;
      const std::uint64_t need = floor + pending + bytes;
      if (need > free) shortfall = std::max(shortfall, need - free);
    }
  }
  return shortfall;
}

Result<EvictReport> BlobStore::EvictWhile(const std::function<bool(std::uint64_t)>& more) {
  EvictReport report;
  while (more(report.bytes)) {
    // A batch of the oldest unpinned blobs.
    std::vector<std::pair<Digest, std::uint64_t>> batch;
    auto scan = blob_index_->ForEachByAge([&](const Digest& d, const BlobRecord& r) {
      if (Evictable(r)) batch.emplace_back(d, r.size);
      return batch.size() < 64;
    });
    if (!scan) return Fail(scan.error());
    if (batch.empty()) break;
    for (const auto& [digest, size] : batch) {
      if (!more(report.bytes)) break;
      auto deleted = DeleteLocked(digest, size);
      if (!deleted) return Fail(deleted.error());
      if (!*deleted) continue;
      report.blobs += 1;
      report.bytes += size;
      evictions_.fetch_add(1, std::memory_order_relaxed);
      log::Info(log::Module::kStore, "blob_evicted", {{"digest", digest.Hex()}, {"bytes", size}});
    }
  }
  return report;
}

Result<bool> BlobStore::DeleteLocked(const Digest& digest, std::uint64_t size) {
  // Index entry first: from then on no lookup finds it; readers that already
  // hold its descriptor keep reading the unlinked inode.
  auto deleted = blob_index_->DeleteBlob(digest);
  if (!deleted) return Fail(deleted.error());
  if (*deleted) NotifyRemoving(digest);
  if (auto removed = disk_.Remove(BlobPath(digest)); !removed) {
    // Out of the index already: an orphan file that fsck removes at the next
    // start. The space is counted free, as the index says.
    log::Warn(log::Module::kStore, "blob_unlink_failed",
              {{"digest", digest.Hex()}, {"error", removed.error().message()}});
  }
  if (*deleted) used_ -= std::min(used_, size);
  return *deleted;
}

Result<bool> BlobStore::Remove(const Digest& digest) {
  std::lock_guard lock(space_mu_);
  auto record = index_->GetBlob(digest);
  if (!record) return Fail(record.error());
  if (!*record) return false;
  if ((*record)->pins > 0) return Fail(Errc::kBusy);
  return DeleteLocked(digest, (*record)->size);
}

Result<bool> BlobStore::Quarantine(const Digest& digest, std::string_view why) {
  std::lock_guard lock(space_mu_);
  auto record = index_->GetBlob(digest);
  if (!record) return Fail(record.error());
  if (!*record) return false;
  auto deleted = blob_index_->DeleteBlob(digest);
  if (!deleted) return Fail(deleted.error());
  if (!*deleted) return false;
  NotifyRemoving(digest);
  used_ -= std::min(used_, (*record)->size);
  quarantined_.fetch_add(1);
  const fs::path dir = root_ / "quarantine";
  const fs::path target =
      dir / fmt::format("{}-{}", digest.kind() == DigestKind::kSha256 ? "sha256" : "sha1", digest.Hex());
  auto moved = disk_.CreateDirectories(dir);
  if (moved) moved = disk_.Rename(BlobPath(digest), target);
  if (!moved) (void)disk_.Remove(BlobPath(digest));  // else fsck removes the orphan
  log::Error(log::Module::kStore, "blob_quarantined",
             {{"digest", digest.Hex()},
              {"bytes", (*record)->size},
              {"why", why},
              {"moved_to", moved ? target.string() : std::string("(unlinked)")}});
  return true;
}

Result<Reservation> BlobStore::Reserve(std::uint64_t bytes) {
  std::lock_guard lock(space_mu_);
  const std::uint64_t shortfall = Shortfall(bytes);
  if (shortfall > 0) {
    // Evict only when that makes room: a file that can never fit (larger
    // than store.max_bytes, or than all unpinned blobs together) must not
    // empty the cache on its way to being refused.
    std::uint64_t evictable = 0;
    auto scan = blob_index_->ForEachByAge([&](const Digest&, const BlobRecord& r) {
      if (Evictable(r)) evictable += r.size;
      return evictable < shortfall;
    });
    if (!scan) return Fail(scan.error());
    if (evictable < shortfall) {
      log::Warn(log::Module::kStore, "reserve_failed",
                {{"bytes", bytes}, {"shortfall", shortfall - evictable}});
      return Fail(Errc::kNoSpace);
    }
    auto evicted = EvictWhile([&](std::uint64_t freed) { return freed < shortfall; });
    if (!evicted) return Fail(evicted.error());
    if (evicted->bytes < shortfall) {
      log::Warn(log::Module::kStore, "reserve_failed",
                {{"bytes", bytes}, {"shortfall", shortfall - evicted->bytes}});
      return Fail(Errc::kNoSpace);
    }
  }
  reserved_ += bytes;
  return Reservation(this, bytes);
}

Result<EvictReport> BlobStore::EvictTo(std::uint64_t target_bytes) {
  std::lock_guard lock(space_mu_);
  return EvictWhile([&](std::uint64_t) { return used_ > target_bytes; });
}

// --------------------------------------------------------------- BlobWriter

BlobWriter::BlobWriter(BlobStore& store, Digest digest, std::uint64_t expected_size,
                       fs::path staging_path, UniqueFd fd, UniqueFd read_fd,
                       Reservation reservation, std::vector<std::unique_ptr<HashTap>> taps)
    : store_(store),
      digest_(digest),
      expected_size_(expected_size),
      staging_path_(std::move(staging_path)),
      fd_(std::move(fd)),
      read_fd_(std::move(read_fd)),
      hasher_(digest.kind(), expected_size),
      taps_(std::move(taps)),
      reservation_(std::move(reservation)) {}

BlobWriter::~BlobWriter() {
  if (state_.load() != State::kCommitted) Abort();
  store_.staged_ -= staged_.load();
  std::unique_lock lock(mu_);
  LetGo(lock);
}

void BlobWriter::LetGo(std::unique_lock<std::mutex>&) {
  if (!registered_) return;
  registered_ = false;
  store_.EndWrite(digest_);
}

Result<void> BlobWriter::WriteAt(std::uint64_t offset, std::span<const std::uint8_t> data) {
  if (state_.load() != State::kWriting) return Fail(core::Errc::kInvalidArgument);
  const std::uint64_t end = offset + data.size();
  if (end < offset || end > expected_size_) return Fail(Errc::kSizeMismatch);
  if (data.empty()) return {};

  // Claim the bytes nobody has claimed yet, so each byte is written once.
  Pieces pieces;
  {
    std::lock_guard lock(mu_);
    pieces = Uncovered(claimed_, offset, end);
    for (const auto& [s, e] : pieces) Insert(claimed_, s, e);
  }
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const auto [s, e] = pieces[i];
    auto written = WriteAll(store_.disk_, fd_.get(), data.data() + (s - offset), e - s, s);
    if (!written) {
      // Release what was not written so a retry can write it.
      std::lock_guard lock(mu_);
      for (std::size_t j = i; j < pieces.size(); ++j) Remove(claimed_, pieces[j].first, pieces[j].second);
      for (std::size_t j = 0; j < i; ++j) Insert(written_, pieces[j].first, pieces[j].second);
      return written;
    }
  }
  for (const auto& [s, e] : pieces) {
    staged_ += e - s;
    store_.staged_ += e - s;
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& [s, e] : pieces) Insert(written_, s, e);
    if (!written_.empty() && written_.begin()->first == 0) {
      contiguous_.store(written_.begin()->second);
    }
  }
  return AdvanceHash(offset, data, pieces);
}

std::uint64_t BlobWriter::WrittenFrom(std::uint64_t offset) const {
  std::lock_guard lock(mu_);
  auto it = written_.upper_bound(offset);
  if (it == written_.begin()) return offset;
  --it;
  return it->first <= offset && offset < it->second ? it->second : offset;
}

Result<void> BlobWriter::AdvanceHash(std::uint64_t offset, std::span<const std::uint8_t> data,
                                     const Pieces& mine) {
  std::unique_lock lock(mu_);
  if (hashing_) return {};  // the thread that is hashing picks up our bytes too
  hashing_ = true;
  std::vector<std::uint8_t> buffer;
  while (hashed_ < contiguous_.load()) {
    const std::uint64_t from = hashed_;
    const std::uint64_t to = contiguous_.load();
    lock.unlock();
    std::uint64_t pos = from;
    ErrorCode error;
    while (pos < to && !error) {
      // Bytes this call wrote itself are hashed from memory; only those: a
      // range someone else claimed first holds their bytes, not ours.
      std::uint64_t next_mine = to;
      bool from_memory = false;
      for (const auto& [s, e] : mine) {
        if (pos >= s && pos < e) {
          const std::uint64_t n = std::min(to, e) - pos;
          Hash(data.subspan(pos - offset, n));
          pos += n;
          from_memory = true;
          break;
        }
        if (s > pos) next_mine = std::min(next_mine, s);
      }
      if (from_memory) continue;
      // Bytes another writer put there: read them back (page cache).
      std::uint64_t n = std::min<std::uint64_t>(next_mine - pos, kHashReadChunk);
      buffer.resize(n);
      auto got = store_.disk_.Read(fd_.get(), buffer.data(), n, pos);
      if (!got || *got == 0) {
        error = got ? ErrorCode(core::Errc::kCorrupt) : got.error();
        break;
      }
      Hash({buffer.data(), *got});
      pos += *got;
    }
    lock.lock();
    hashed_ = pos;
    if (error) {
      hashing_ = false;
      return Fail(error);
    }
  }
  hashing_ = false;
  return {};
}

void BlobWriter::Hash(std::span<const std::uint8_t> bytes) {
  hasher_.Update(bytes);
  for (const auto& tap : taps_) tap->Update(bytes);
}

void BlobWriter::AddTap(std::unique_ptr<HashTap> tap) {
  std::lock_guard lock(mu_);
  Check(hashed_ == 0 && !hashing_, "BlobWriter::AddTap after bytes were hashed");
  taps_.push_back(std::move(tap));
}

Result<UniqueFd> BlobWriter::OpenReader() const {
  // Not a new open of a path: by now the file may have been renamed, and
  // then evicted (a small cache under pressure evicts a blob committed a
  // moment ago), or unlinked by Abort(). A reader that joined the download
  // reads the same bytes whatever became of the name.
  const int fd = ::fcntl(read_fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return Fail(core::ErrnoError(errno));
  return UniqueFd(fd);
}

Result<void> BlobWriter::Verify() {
  std::unique_lock lock(mu_);
  return VerifyLocked(lock);
}

Result<void> BlobWriter::VerifyLocked(std::unique_lock<std::mutex>& lock) {
  if (state_.load() != State::kWriting) return Fail(core::Errc::kInvalidArgument);
  if (verified_.load()) return {};
  if (contiguous_.load() != expected_size_ || hashed_ != expected_size_ || hashing_) {
    return Fail(Errc::kIncomplete);
  }
  const Digest actual = hasher_.Finish();
  for (const auto& tap : taps_) tap->Finish(actual == digest_);
  if (actual != digest_) {
    actual_ = actual;
    store_.digest_mismatches_.fetch_add(1, std::memory_order_relaxed);
    log::Warn(log::Module::kStore, "digest_mismatch",
              {{"expected", digest_.Hex()}, {"actual", actual.Hex()}, {"size", expected_size_}});
    MarkFailed(lock);
    return tl::unexpected<ErrorCode>(Errc::kDigestMismatch);
  }
  verified_.store(true);
  return {};
}

Result<void> BlobWriter::Commit() {
  std::unique_lock lock(mu_);
  if (auto verified = VerifyLocked(lock); !verified) return verified;
  // Every byte is written and verified: nothing changes the file from here
  // on. The waits for the disk run without the lock, so that readers
  // following this download (WrittenFrom(), on an event loop)
  // are never held up by an fsync of a large file.
  lock.unlock();
  // Durable before visible: data, then the rename, then both directories.
  const fs::path target = store_.BlobPath(digest_);
  Disk& disk = store_.disk_;
  auto durable = disk.CreateDirectories(target.parent_path());
  if (durable) durable = disk.Sync(fd_.get());
  if (durable) durable = disk.Rename(staging_path_, target);
  if (!durable) {
    lock.lock();
    MarkFailed(lock);
    return durable;
  }
  auto synced = disk.SyncDir(target.parent_path());
  if (synced) synced = disk.SyncDir(staging_path_.parent_path());
  if (synced) {
    const std::int64_t now = core::UnixSeconds();
    synced = store_.blob_index_->PutBlob(digest_, BlobRecord{expected_size_, now, now, 0});
  }
  if (!synced) {
    // Not indexed: take the file back out so blobs/ holds only indexed files
    // (readers that opened it keep their descriptor).
    (void)disk.Remove(target);
    state_.store(State::kFailed);
    lock.lock();
    LetGo(lock);
    return synced;
  }
  state_.store(State::kCommitted);
  store_.Committed(reservation_, expected_size_);
  // In the index now: once evicted (at once, in a small cache) it may be
  // written again while this writer's readers still hold it.
  lock.lock();
  LetGo(lock);
  lock.unlock();
  store_.NotifyCommitted(CommittedBlob{digest_, expected_size_, target});
  return {};
}

void BlobWriter::MarkFailed(std::unique_lock<std::mutex>& lock) {
  // Once: by then the staging path may be a new writer's of the same digest.
  if (state_.exchange(State::kFailed) == State::kFailed) return;
  // A failed writer holds nothing back while readers of it live on: its
  // space (the unlinked file's blocks go with the last descriptor) and the
  // digest, which the next request may start writing afresh.
  store_.staged_ -= staged_.exchange(0);
  reservation_ = Reservation();
  // fsck removes leftovers at the next start. A file that could not be
  // removed keeps the digest until this writer is gone: a new writer would
  // truncate it under this one's readers.
  if (store_.disk_.Remove(staging_path_)) LetGo(lock);
}

void BlobWriter::Abort() {
  std::unique_lock lock(mu_);
  if (state_.load() == State::kCommitted) return;
  MarkFailed(lock);
}

std::optional<Digest> BlobWriter::actual_digest() const {
  std::lock_guard lock(mu_);
  return actual_;
}

}  // namespace hubcache::store
