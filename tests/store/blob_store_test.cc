#include "tests/support/temp_dir.h"
#include "tests/support/bytes.h"
#include "tests/support/files.h"
#include "store/blob_store.h"
#include "store/blob_index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <mutex>
#include <thread>

#include "core/errc.h"
#include "store/errc.h"
#include "store/small_blob_cache.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using testing::Content;
using testing::ReadAll;
using testing::AsBytes;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.cache_dir = root_.string();
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
  }

  // Writes `content` in one go and commits it.
  Digest Put(const std::string& content, DigestKind kind = DigestKind::kSha256) {
    const Digest digest = HashBytes(kind, content);
    auto writer = store_->BeginWrite(digest, content.size());
    EXPECT_TRUE(writer);
    EXPECT_TRUE((*writer)->WriteAt(0, AsBytes(content)));
    auto committed = (*writer)->Commit();
    EXPECT_TRUE(committed) << committed.error().message();
    return digest;
  }

  std::size_t StagingFiles() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(root_ / "staging"),
                                                  fs::directory_iterator()));
  }

  testing::TempDir temp_{"hubcache-blobstore-test"};
  const fs::path root_ = temp_.path();
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, CommitThenLookupServesTheBytes) {
  const std::string content = Content(100'000, 1);
  const Digest digest = Put(content);
  const fs::path path = store_->BlobPath(digest);
  EXPECT_EQ(path, root_ / "blobs" / "sha256" / digest.Hex().substr(0, 2) / digest.Hex());
  EXPECT_TRUE(fs::exists(path));
  auto blob = store_->Lookup(digest);
  ASSERT_TRUE(blob) << blob.error().message();
  EXPECT_EQ(blob->size, content.size());
  EXPECT_EQ(ReadAll(blob->fd.get()), content);
  EXPECT_EQ(StagingFiles(), 0u);
  auto record = store_->index().GetBlob(digest);
  ASSERT_TRUE(record && *record);
  EXPECT_EQ((*record)->size, content.size());
}

TEST_F(BlobStoreTest, SmallBlobCacheServesFromMemoryUntilTheBlobIsRemoved) {
  SmallBlobCache cache(*store_);
  const std::string small = Content(2365, 7);
  const Digest digest = Put(small);
  auto first = cache.Get(digest);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, small);
  EXPECT_EQ(cache.bytes(), small.size());
  // From memory now: the same bytes even if the file is changed behind our back.
  {
    std::ofstream f(store_->BlobPath(digest), std::ios::binary | std::ios::trunc);
    f << std::string(small.size(), 'x');
  }
  auto second = cache.Get(digest);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, small);
  // Removed (as eviction does): the store tells the cache, never served again.
  ASSERT_TRUE(store_->Remove(digest));
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_FALSE(cache.Get(digest));
  // Large blobs and unknown digests are not cached.
  const Digest large = Put(Content(SmallBlobCache::kMaxBlobBytes + 1, 8));
  EXPECT_FALSE(cache.Get(large));
  EXPECT_FALSE(cache.Get(HashBytes(DigestKind::kSha256, "absent")));
  // Evicted by EvictTo too.
  const Digest other = Put(Content(100, 9));
  ASSERT_TRUE(cache.Get(other));
  ASSERT_TRUE(store_->EvictTo(0));
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_FALSE(cache.Get(other));
}

// Records what the store says, and what is on disk when it says it.
class RecordingObserver final : public BlobObserver {
 public:
  explicit RecordingObserver(BlobStore& store) : store_(store) {}
  void OnCommitted(const CommittedBlob& blob) override {
    std::lock_guard lock(mu_);
    committed.push_back(blob);
    committed_was_visible.push_back(store_.Lookup(blob.digest).has_value());
  }
  void OnRemoving(const Digest& digest) override {
    std::lock_guard lock(mu_);
    removing.push_back(digest);
    file_was_there.push_back(fs::exists(store_.BlobPath(digest)));
    auto record = store_.GetBlob(digest);
    index_had_it.push_back(record && record->has_value());
  }
  std::vector<CommittedBlob> committed;
  std::vector<bool> committed_was_visible;
  std::vector<Digest> removing;
  std::vector<bool> file_was_there;
  std::vector<bool> index_had_it;

 private:
  BlobStore& store_;
  std::mutex mu_;
};

TEST_F(BlobStoreTest, ObserversHearOfCommitsAndOfRemovalsBeforeTheFileGoes) {
  RecordingObserver observer(*store_);
  store_->AddObserver(&observer);
  const std::string content = Content(5000, 3);
  const Digest digest = Put(content);
  ASSERT_EQ(observer.committed.size(), 1u);
  EXPECT_EQ(observer.committed[0].digest, digest);
  EXPECT_EQ(observer.committed[0].size, content.size());
  EXPECT_EQ(observer.committed[0].path, store_->BlobPath(digest));
  EXPECT_TRUE(observer.committed_was_visible[0]);

  // A failed write is not a commit.
  const std::string lie = Content(100, 4);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, "other"), lie.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(lie)));
  EXPECT_FALSE((*writer)->Commit());
  EXPECT_EQ(observer.committed.size(), 1u);

  ASSERT_TRUE(store_->Remove(digest));
  ASSERT_EQ(observer.removing.size(), 1u);
  EXPECT_EQ(observer.removing[0], digest);
  EXPECT_TRUE(observer.file_was_there[0]);   // a seeder can stop before the file goes
  EXPECT_FALSE(observer.index_had_it[0]);    // and no lookup finds it any more
  EXPECT_FALSE(fs::exists(store_->BlobPath(digest)));
  // Removing what is not there says nothing.
  ASSERT_TRUE(store_->Remove(digest));
  EXPECT_EQ(observer.removing.size(), 1u);

  // Eviction tells too.
  const Digest evicted = Put(Content(300, 5));
  ASSERT_TRUE(store_->EvictTo(0));
  ASSERT_EQ(observer.removing.size(), 2u);
  EXPECT_EQ(observer.removing[1], evicted);
  EXPECT_TRUE(observer.file_was_there[1]);

  store_->RemoveObserver(&observer);
  Put(Content(10, 6));
  EXPECT_EQ(observer.committed.size(), 2u);  // the 5000-byte blob, the evicted one; not this
}

// Collects what a tap is fed.
struct TapLog {
  std::mutex mu;
  std::string bytes;
  int updates = 0;
  std::vector<bool> finished;
};

class LoggingTap final : public HashTap {
 public:
  explicit LoggingTap(std::shared_ptr<TapLog> log) : log_(std::move(log)) {}
  void Update(std::span<const std::uint8_t> bytes) override {
    std::lock_guard lock(log_->mu);
    log_->bytes.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    log_->updates += 1;
  }
  void Finish(bool verified) override {
    std::lock_guard lock(log_->mu);
    log_->finished.push_back(verified);
  }

 private:
  std::shared_ptr<TapLog> log_;
};

TEST_F(BlobStoreTest, HashTapsSeeEveryByteOnceInOrderInTheHashingPass) {
  auto from_store = std::make_shared<TapLog>();
  std::vector<std::pair<Digest, std::uint64_t>> asked;
  store_->AddHashTap([&](const Digest& d, std::uint64_t size) -> std::unique_ptr<HashTap> {
    asked.emplace_back(d, size);
    return std::make_unique<LoggingTap>(from_store);
  });
  const std::string content = Content(3 << 20, 11);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  auto own = std::make_shared<TapLog>();
  (*writer)->AddTap(std::make_unique<LoggingTap>(own));
  // Out of order and overlapping, from several threads, as ranged downloads
  // and retries write.
  constexpr std::size_t kPiece = 256 * 1024;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t at = (3 - t) * kPiece; at < content.size(); at += 3 * kPiece) {
        const std::size_t len = std::min(kPiece + 1000, content.size() - at);
        ASSERT_TRUE((*writer)->WriteAt(at, AsBytes(content).subspan(at, len)));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t at = 0; at < content.size(); at += kPiece) {
    ASSERT_TRUE((*writer)->WriteAt(at, AsBytes(content).subspan(at, std::min(kPiece, content.size() - at))));
  }
  ASSERT_TRUE((*writer)->Commit());
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].first, digest);
  EXPECT_EQ(asked[0].second, content.size());
  for (const auto& log : {from_store, own}) {
    EXPECT_EQ(log->bytes.size(), content.size());
    EXPECT_TRUE(log->bytes == content);
    EXPECT_EQ(log->finished, std::vector<bool>{true});
  }

  // Bytes that do not hash to the digest: the taps hear it.
  auto bad = std::make_shared<TapLog>();
  auto liar = store_->BeginWrite(HashBytes(DigestKind::kSha256, "something else"), 10);
  ASSERT_TRUE(liar);
  (*liar)->AddTap(std::make_unique<LoggingTap>(bad));
  ASSERT_TRUE((*liar)->WriteAt(0, AsBytes(std::string("0123456789"))));
  EXPECT_FALSE((*liar)->Commit());
  EXPECT_EQ(bad->bytes, "0123456789");
  EXPECT_EQ(bad->finished, std::vector<bool>{false});
}

TEST_F(BlobStoreTest, GitBlobIdsAndEmptyBlobs) {
  const Digest hello = Put("Hello, World!", DigestKind::kGitSha1);
  EXPECT_EQ(hello.Hex(), "b45ef6fec89518d314f546fd6c3025367b721684");
  EXPECT_TRUE(fs::exists(root_ / "blobs" / "sha1" / "b4" / hello.Hex()));
  const Digest empty = Put("");
  auto blob = store_->Lookup(empty);
  ASSERT_TRUE(blob);
  EXPECT_EQ(blob->size, 0u);
}

TEST_F(BlobStoreTest, NothingIsVisibleBeforeCommit) {
  const std::string content = Content(1000, 2);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content)));
  EXPECT_EQ(store_->Lookup(digest).error(), core::Errc::kNotFound);
  EXPECT_FALSE(fs::exists(store_->BlobPath(digest)));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_TRUE(store_->Lookup(digest));
}

TEST_F(BlobStoreTest, VerifiedBytesAreReadableButNotVisibleUntilCommit) {
  const std::string content = Content(300'000, 12);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(100'000, AsBytes(content).subspan(100'000)));
  EXPECT_EQ((*writer)->Verify().error(), Errc::kIncomplete);  // a gap: still usable
  EXPECT_FALSE((*writer)->verified());
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content).first(100'000)));
  ASSERT_TRUE((*writer)->Verify());
  EXPECT_TRUE((*writer)->verified());
  EXPECT_TRUE((*writer)->Verify());  // idempotent
  // Verified, not yet durable: readers of the staging file get every byte,
  // lookups still miss.
  auto reader = (*writer)->OpenReader();
  ASSERT_TRUE(reader);
  EXPECT_EQ(ReadAll(reader->get()), content);
  EXPECT_EQ(store_->Lookup(digest).error(), core::Errc::kNotFound);
  EXPECT_FALSE(fs::exists(store_->BlobPath(digest)));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ((*writer)->state(), BlobWriter::State::kCommitted);
  auto blob = store_->Lookup(digest);
  ASSERT_TRUE(blob);
  EXPECT_EQ(ReadAll(blob->fd.get()), content);
}

TEST_F(BlobStoreTest, VerifyCatchesAMismatchBeforeAnythingIsPublished) {
  std::string lie = Content(4096, 13);
  const Digest digest = HashBytes(DigestKind::kSha256, lie);
  lie[0] ^= 0x80;
  auto writer = store_->BeginWrite(digest, lie.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(lie)));
  EXPECT_EQ((*writer)->Verify().error(), Errc::kDigestMismatch);
  EXPECT_FALSE((*writer)->verified());
  EXPECT_EQ((*writer)->state(), BlobWriter::State::kFailed);
  EXPECT_EQ(StagingFiles(), 0u);
  EXPECT_FALSE((*writer)->Commit());
  EXPECT_EQ(store_->Lookup(digest).error(), core::Errc::kNotFound);
}

TEST_F(BlobStoreTest, OutOfOrderParallelWritesCommit) {
  const std::string content = Content(3'000'000, 3);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  constexpr std::size_t kChunk = 65'536;
  std::vector<std::size_t> offsets;
  for (std::size_t off = 0; off < content.size(); off += kChunk) offsets.push_back(off);
  std::shuffle(offsets.begin(), offsets.end(), std::mt19937(7));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = t; i < offsets.size(); i += 4) {
        ASSERT_TRUE((*writer)->WriteAt(offsets[i], AsBytes(content, offsets[i], kChunk)));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ((*writer)->contiguous_bytes(), content.size());
  auto committed = (*writer)->Commit();
  ASSERT_TRUE(committed) << committed.error().message();
  EXPECT_EQ(ReadAll(store_->Lookup(digest)->fd.get()), content);
}

TEST_F(BlobStoreTest, ContiguousPrefixGrowsOnlyWithoutGaps) {
  const std::string content = Content(300, 4);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), 300);
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(200, AsBytes(content, 200, 100)));
  EXPECT_EQ((*writer)->contiguous_bytes(), 0u);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 100)));
  EXPECT_EQ((*writer)->contiguous_bytes(), 100u);
  EXPECT_EQ((*writer)->Commit().error(), Errc::kIncomplete);  // still usable
  ASSERT_TRUE((*writer)->WriteAt(100, AsBytes(content, 100, 100)));
  EXPECT_EQ((*writer)->contiguous_bytes(), 300u);
  EXPECT_TRUE((*writer)->Commit());
}

TEST_F(BlobStoreTest, FirstWriteOfAByteWins) {
  const std::string content = Content(1000, 5);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 600)));
  // A retried, overlapping range with different bytes must not change what
  // was written (and hashed) already.
  const std::string other = Content(1000, 99);
  ASSERT_TRUE((*writer)->WriteAt(400, AsBytes(other.substr(0, 200) + content.substr(600))));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ(ReadAll(store_->Lookup(digest)->fd.get()), content);
}

TEST_F(BlobStoreTest, DigestMismatchDeletesAndNamesBothDigests) {
  const std::string content = Content(5000, 6);
  std::string lie = content;
  lie[2500] ^= 1;  // one flipped bit
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, lie.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(lie)));
  auto committed = (*writer)->Commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error(), Errc::kDigestMismatch);
  EXPECT_EQ((*writer)->state(), BlobWriter::State::kFailed);
  ASSERT_TRUE((*writer)->actual_digest());
  EXPECT_EQ(*(*writer)->actual_digest(), HashBytes(DigestKind::kSha256, lie));
  EXPECT_EQ(StagingFiles(), 0u);
  EXPECT_EQ(store_->Lookup(digest).error(), core::Errc::kNotFound);
  EXPECT_FALSE(fs::exists(store_->BlobPath(digest)));
  writer->reset();
  EXPECT_TRUE(store_->BeginWrite(digest, content.size()));  // can be fetched again
}

TEST_F(BlobStoreTest, WritesPastTheExpectedSizeAreRefused) {
  const std::string content = Content(100, 7);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), 100);
  ASSERT_TRUE(writer);
  EXPECT_EQ((*writer)->WriteAt(50, AsBytes(content + "x", 50)).error(), Errc::kSizeMismatch);
  EXPECT_EQ((*writer)->WriteAt(~std::uint64_t{0}, AsBytes("xx")).error(), Errc::kSizeMismatch);
}

TEST_F(BlobStoreTest, OneWriterPerDigestAndNoRewriteOfCommitted) {
  const std::string content = Content(10, 8);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto first = store_->BeginWrite(digest, 10);
  ASSERT_TRUE(first);
  EXPECT_EQ(store_->BeginWrite(digest, 10).error(), Errc::kBusy);
  ASSERT_TRUE((*first)->WriteAt(0, AsBytes(content)));
  ASSERT_TRUE((*first)->Commit());
  EXPECT_EQ(store_->BeginWrite(digest, 10).error(), core::Errc::kAlreadyExists);
}

// A failed download's writer lives on while its readers hold it; the next
// request for the blob must be able to start a download of its own.
TEST_F(BlobStoreTest, AFailedWriterLetsTheDigestGoAtOnce) {
  const std::string content = Content(1000, 17);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto failed = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(failed);
  ASSERT_TRUE((*failed)->WriteAt(0, AsBytes(content, 0, 10)));
  EXPECT_EQ(store_->reserved_bytes(), content.size());
  (*failed)->Abort();
  EXPECT_EQ(store_->reserved_bytes(), 0u) << "a failed writer's space is free at once";
  auto next = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(next) << next.error().message();
  // The failed one going away does not end the new one's claim.
  failed->reset();
  EXPECT_EQ(store_->BeginWrite(digest, content.size()).error(), Errc::kBusy);
  ASSERT_TRUE((*next)->WriteAt(0, AsBytes(content)));
  ASSERT_TRUE((*next)->Commit());
  EXPECT_EQ(ReadAll(store_->Lookup(digest)->fd.get()), content);
  // Committed, then evicted while the writer lives on (its readers hold it):
  // the blob can be written again.
  ASSERT_TRUE(store_->Remove(digest));
  auto again = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(again) << again.error().message();
  again->reset();
  // So does one whose bytes were wrong.
  const std::string other = Content(1000, 18);
  const Digest other_digest = HashBytes(DigestKind::kSha256, other);
  auto liar = store_->BeginWrite(other_digest, other.size());
  ASSERT_TRUE(liar);
  ASSERT_TRUE((*liar)->WriteAt(0, AsBytes(content)));
  EXPECT_EQ((*liar)->Commit().error(), Errc::kDigestMismatch);
  EXPECT_TRUE(store_->BeginWrite(other_digest, other.size()));
}

TEST_F(BlobStoreTest, AbortAndDestructionRemoveStaging) {
  const std::string content = Content(10, 9);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  {
    auto writer = store_->BeginWrite(digest, 10);
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 5)));
    EXPECT_EQ(StagingFiles(), 1u);
  }
  EXPECT_EQ(StagingFiles(), 0u);
  auto writer = store_->BeginWrite(digest, 10);
  ASSERT_TRUE(writer);
  (*writer)->Abort();
  (*writer)->Abort();
  EXPECT_EQ(StagingFiles(), 0u);
  EXPECT_EQ((*writer)->WriteAt(0, AsBytes(content)).error(), core::Errc::kInvalidArgument);
}

TEST_F(BlobStoreTest, ReaderFollowsAGrowingFileAcrossCommit) {
  const std::string content = Content(4096, 10);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  auto reader = (*writer)->OpenReader();
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 1000)));
  const std::uint64_t visible = (*writer)->contiguous_bytes();
  std::string part(visible, '\0');
  ASSERT_EQ(::pread(reader->get(), part.data(), visible, 0), static_cast<ssize_t>(visible));
  EXPECT_EQ(part, content.substr(0, 1000));
  ASSERT_TRUE((*writer)->WriteAt(1000, AsBytes(content, 1000)));
  ASSERT_TRUE((*writer)->Commit());  // renamed under the reader
  EXPECT_EQ(ReadAll(reader->get()), content);
}

TEST_F(BlobStoreTest, WrittenFromReportsRunsAheadOfTheContiguousPrefix) {
  const std::string content = Content(400, 13);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), content.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 100)));
  ASSERT_TRUE((*writer)->WriteAt(200, AsBytes(content, 200, 100)));
  EXPECT_EQ((*writer)->contiguous_bytes(), 100u);
  EXPECT_EQ((*writer)->WrittenFrom(0), 100u);
  EXPECT_EQ((*writer)->WrittenFrom(50), 100u);
  EXPECT_EQ((*writer)->WrittenFrom(100), 100u);  // not on disk yet
  EXPECT_EQ((*writer)->WrittenFrom(150), 150u);
  EXPECT_EQ((*writer)->WrittenFrom(200), 300u);
  EXPECT_EQ((*writer)->WrittenFrom(299), 300u);
  EXPECT_EQ((*writer)->WrittenFrom(300), 300u);
  ASSERT_TRUE((*writer)->WriteAt(100, AsBytes(content, 100, 100)));
  EXPECT_EQ((*writer)->WrittenFrom(0), 300u);
}

TEST_F(BlobStoreTest, ReaderOpenedAfterCommitReadsTheCommittedBlob) {
  // A request that joined a download just as it finished (found by
  // huggingface.js's probe-then-GET against the proxy).
  const std::string content = Content(3000, 12);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content)));
  ASSERT_TRUE((*writer)->Commit());
  auto reader = (*writer)->OpenReader();
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ(ReadAll(reader->get()), content);
}

// A request that joined a download may ask for its descriptor after the
// blob was committed and evicted at once (a small cache under pressure: the
// soak's one 503), or after the download failed.
TEST_F(BlobStoreTest, ReaderOpenedAfterTheCommittedBlobWasEvictedReadsItsBytes) {
  const std::string content = Content(5000, 15);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content)));
  ASSERT_TRUE((*writer)->Commit());
  auto removed = store_->Remove(digest);
  ASSERT_TRUE(removed && *removed);
  ASSERT_FALSE(fs::exists(store_->BlobPath(digest)));
  auto reader = (*writer)->OpenReader();
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ(ReadAll(reader->get()), content);
}

TEST_F(BlobStoreTest, ReaderOpenedAfterAbortReadsWhatWasWritten) {
  const std::string content = Content(5000, 16);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), content.size());
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 1234)));
  (*writer)->Abort();
  EXPECT_EQ(StagingFiles(), 0u);
  auto reader = (*writer)->OpenReader();
  ASSERT_TRUE(reader) << reader.error().message();
  EXPECT_EQ(ReadAll(reader->get()), content.substr(0, 1234));
}

TEST_F(BlobStoreTest, OpenDescriptorSurvivesRemoval) {
  const std::string content = Content(50'000, 11);
  const Digest digest = Put(content);
  auto blob = store_->Lookup(digest);
  ASSERT_TRUE(blob);
  ASSERT_TRUE(store_->blob_index().DeleteBlob(digest));
  fs::remove(store_->BlobPath(digest));
  EXPECT_EQ(ReadAll(blob->fd.get()), content);
  EXPECT_EQ(store_->Lookup(digest).error(), core::Errc::kNotFound);
}

TEST_F(BlobStoreTest, LookupDetectsMissingAndTruncatedFiles) {
  const Digest missing = Put(Content(100, 12));
  fs::remove(store_->BlobPath(missing));
  EXPECT_EQ(store_->Lookup(missing).error(), core::Errc::kNotFound);
  const Digest truncated = Put(Content(100, 13));
  fs::resize_file(store_->BlobPath(truncated), 50);
  EXPECT_EQ(store_->Lookup(truncated).error(), core::Errc::kCorrupt);
}

// A blob that cannot be read back leaves the store whatever holds it: out of
// the index (pins and all), its file to quarantine/, its bytes no longer
// counted; committed again, it gets its pins back.
TEST_F(BlobStoreTest, QuarantineTakesAnUnreadableBlobOutAndARecommitRestoresItsPins) {
  const std::string content = Content(10'000, 14);
  const Digest digest = Put(content);
  const Digest other = Put(Content(100, 15));
  ASSERT_TRUE(store_->index().Pin("org/model@abc", {digest}));
  ASSERT_EQ((*store_->GetBlob(digest))->pins, 1u);
  const std::uint64_t used = store_->used_bytes();
  EXPECT_EQ(store_->Remove(digest).error(), Errc::kBusy);  // rm respects the pin

  auto taken = store_->Quarantine(digest, "Input/output error");
  ASSERT_TRUE(taken) << taken.error().message();
  EXPECT_TRUE(*taken);
  EXPECT_FALSE(*store_->GetBlob(digest));
  EXPECT_FALSE(fs::exists(store_->BlobPath(digest)));
  const fs::path moved = root_ / "quarantine" / ("sha256-" + digest.Hex());
  EXPECT_EQ(testing::ReadFile(moved), content);
  EXPECT_EQ(store_->used_bytes(), used - content.size());
  EXPECT_EQ(store_->quarantined(), 1u);
  EXPECT_TRUE(*store_->GetBlob(other));
  EXPECT_FALSE(*store_->Quarantine(digest, "again"));  // not there any more

  Put(content);
  auto record = store_->GetBlob(digest);
  ASSERT_TRUE(record && *record);
  EXPECT_EQ((*record)->pins, 1u);
  EXPECT_EQ(store_->used_bytes(), used);
}

}  // namespace
}  // namespace hubcache::store
