#include "tests/support/temp_dir.h"
#include "tests/support/bytes.h"
#include "store/blob_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

#include "core/errc.h"
#include "store/errc.h"

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

TEST_F(BlobStoreTest, SmallContentIsServedFromMemoryUntilTheBlobIsRemoved) {
  const std::string small = Content(2365, 7);
  const Digest digest = Put(small);
  auto first = store_->SmallContent(digest);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, small);
  // From memory now: the same bytes even if the file is changed behind our back.
  {
    std::ofstream f(store_->BlobPath(digest), std::ios::binary | std::ios::trunc);
    f << std::string(small.size(), 'x');
  }
  auto second = store_->SmallContent(digest);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, small);
  // Removed (as eviction does): never served again.
  ASSERT_TRUE(store_->Remove(digest));
  EXPECT_FALSE(store_->SmallContent(digest));
  // Large blobs and unknown digests are not cached.
  const Digest large = Put(Content(BlobStore::kSmallBlobBytes + 1, 8));
  EXPECT_FALSE(store_->SmallContent(large));
  EXPECT_FALSE(store_->SmallContent(HashBytes(DigestKind::kSha256, "absent")));
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

TEST_F(BlobStoreTest, OpenDescriptorSurvivesRemoval) {
  const std::string content = Content(50'000, 11);
  const Digest digest = Put(content);
  auto blob = store_->Lookup(digest);
  ASSERT_TRUE(blob);
  ASSERT_TRUE(store_->index().DeleteBlob(digest));
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

}  // namespace
}  // namespace hubcache::store
