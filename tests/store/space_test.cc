// Reservations and eviction (store/blob_store.h), and the token HMAC.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "core/errc.h"
#include "tests/support/temp_dir.h"
#include "tests/support/bytes.h"
#include "store/blob_store.h"
#include "store/blob_index.h"
#include "store/errc.h"
#include "store/fsck.h"
#include "store/token_hmac.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using testing::Content;
using testing::ReadAll;

class SpaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open(10'000);
  }
  void TearDown() override {
    store_.reset();
  }
  void Open(std::uint64_t max_bytes) {
    store_.reset();
    Options options;
    options.cache_dir = root_.string();
    options.max_bytes = max_bytes;
    options.min_free_percent = 0;
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  Result<Digest> Put(const std::string& content, std::int64_t last_access) {
    const Digest digest = HashBytes(DigestKind::kSha256, content);
    auto writer = store_->BeginWrite(digest, content.size());
    if (!writer) return Fail(writer.error());
    EXPECT_TRUE((*writer)->WriteAt(
        0, {reinterpret_cast<const std::uint8_t*>(content.data()), content.size()}));
    if (auto c = (*writer)->Commit(); !c) return Fail(c.error());
    // Pin the access order down (real touches have 1 s resolution).
    EXPECT_TRUE(store_->blob_index().PutBlob(digest, {content.size(), 0, last_access, 0}));
    return digest;
  }
  bool Has(const Digest& d) { return store_->Lookup(d).has_value(); }

  testing::TempDir temp_{"hubcache-space-test"};
  const fs::path root_ = temp_.path();
  std::unique_ptr<BlobStore> store_;
};

TEST_F(SpaceTest, MaxBytesEvictsLeastRecentlyUsedFirst) {
  const Digest a = Put(Content(3000, 1), 100).value();
  const Digest b = Put(Content(3000, 2), 300).value();
  const Digest c = Put(Content(3000, 3), 200).value();
  EXPECT_EQ(store_->used_bytes(), 9000u);
  const Digest d = Put(Content(3000, 4), 400).value();  // needs 2000 more: evicts `a`
  EXPECT_FALSE(Has(a));
  EXPECT_FALSE(fs::exists(store_->BlobPath(a)));
  EXPECT_TRUE(Has(b) && Has(c) && Has(d));
  EXPECT_EQ(store_->used_bytes(), 9000u);
  const Digest e = Put(Content(4000, 5), 500).value();  // 3000 short: evicts c (200) only
  EXPECT_FALSE(Has(c));
  EXPECT_TRUE(Has(b) && Has(d) && Has(e));
  EXPECT_EQ(store_->used_bytes(), 10'000u);
}

TEST_F(SpaceTest, PinnedBlobsAreNeverEvicted) {
  const Digest a = Put(Content(4000, 1), 100).value();
  const Digest b = Put(Content(4000, 2), 200).value();
  ASSERT_TRUE(store_->index().Pin("model/org/x@main", {a}));
  const Digest c = Put(Content(4000, 3), 300).value();  // evicts b, the oldest unpinned
  EXPECT_TRUE(Has(a));
  EXPECT_FALSE(Has(b));
  ASSERT_TRUE(store_->index().Pin("model/org/x@main", {c}));
  // Everything left is pinned: no room can be made.
  auto refused = Put(Content(4000, 4), 400);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), Errc::kNoSpace);
  EXPECT_TRUE(Has(a) && Has(c));
  EXPECT_EQ(store_->reserved_bytes(), 0u);
}

TEST_F(SpaceTest, AFileThatCanNeverFitEvictsNothing) {
  const Digest a = Put(Content(3000, 1), 100).value();
  const Digest b = Put(Content(3000, 2), 200).value();
  // Larger than store.max_bytes: refused, and the cache is left alone.
  auto huge = store_->BeginWrite(HashBytes(DigestKind::kSha256, "huge"), 10'001);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error(), Errc::kNoSpace);
  EXPECT_TRUE(Has(a) && Has(b));
  EXPECT_EQ(store_->used_bytes(), 6000u);
  // Fits under the limit, but only if pinned blobs went: refused, nothing evicted.
  ASSERT_TRUE(store_->index().Pin("model/org/x@main", {a}));
  auto refused = store_->Reserve(8000);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), Errc::kNoSpace);
  EXPECT_TRUE(Has(a) && Has(b));
  EXPECT_EQ(store_->reserved_bytes(), 0u);
  // Room that evicting `b` makes is still made.
  auto fits = store_->Reserve(7000);
  ASSERT_TRUE(fits);
  EXPECT_TRUE(Has(a));
  EXPECT_FALSE(Has(b));
}

TEST_F(SpaceTest, ReservationsCountUntilReleased) {
  auto held = store_->Reserve(8000);
  ASSERT_TRUE(held);
  EXPECT_EQ(store_->reserved_bytes(), 8000u);
  EXPECT_EQ(store_->Reserve(3000).error(), Errc::kNoSpace);  // nothing to evict
  // A download in flight holds its reservation; its blob is not evictable.
  const std::string content = Content(2000, 9);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), 2000);
  ASSERT_TRUE(writer);
  EXPECT_EQ(store_->reserved_bytes(), 10'000u);
  held->~Reservation();
  new (&*held) Reservation();
  EXPECT_EQ(store_->reserved_bytes(), 2000u);
  ASSERT_TRUE((*writer)->WriteAt(0, {reinterpret_cast<const std::uint8_t*>(content.data()), 2000}));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_EQ(store_->reserved_bytes(), 0u);
  EXPECT_EQ(store_->used_bytes(), 2000u);
  // An abandoned download gives its reservation back.
  {
    auto abandoned = store_->BeginWrite(HashBytes(DigestKind::kSha256, "x"), 5000);
    ASSERT_TRUE(abandoned);
    EXPECT_EQ(store_->reserved_bytes(), 5000u);
  }
  EXPECT_EQ(store_->reserved_bytes(), 0u);
}

TEST_F(SpaceTest, EvictToTargetKeepsReadersWorking) {
  const std::string old_content = Content(3000, 1);
  const Digest a = Put(old_content, 100).value();
  const Digest b = Put(Content(3000, 2), 200).value();
  const Digest c = Put(Content(3000, 3), 300).value();
  auto reader = store_->Lookup(a);
  ASSERT_TRUE(reader);
  auto report = store_->EvictTo(3000);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->blobs, 2u);
  EXPECT_EQ(report->bytes, 6000u);
  EXPECT_FALSE(Has(a) || Has(b));
  EXPECT_TRUE(Has(c));
  EXPECT_EQ(ReadAll(reader->fd.get()), old_content);  // evicted under a reader
}

TEST_F(SpaceTest, UsedBytesSurviveReopen) {
  Put(Content(1000, 1), 1).value();
  Put(Content(2500, 2), 2).value();
  Open(10'000);
  EXPECT_EQ(store_->used_bytes(), 3500u);
}

// Readers, writers and an evictor at once: a lookup either finds nothing or
// yields exactly the committed bytes, never a partial or wrong blob.
TEST_F(SpaceTest, ConcurrentReadersDuringCommitAndEviction) {
  Open(200'000);
  constexpr int kBlobs = 120;
  std::vector<std::string> contents;
  std::vector<Digest> digests;
  for (int i = 0; i < kBlobs; ++i) {
    contents.push_back(Content(3000 + i * 37, 1000 + i));
    digests.push_back(HashBytes(DigestKind::kSha256, contents.back()));
  }
  std::atomic<bool> done{false};
  std::atomic<int> hits{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      for (int i = r; !done.load(); i = (i + 7) % kBlobs) {
        auto blob = store_->Lookup(digests[i]);
        if (!blob) {
          ASSERT_EQ(blob.error(), core::Errc::kNotFound);
          continue;
        }
        ASSERT_EQ(ReadAll(blob->fd.get()), contents[i]) << i;
        ++hits;
      }
    });
  }
  std::thread evictor([&] {
    while (!done.load()) ASSERT_TRUE(store_->EvictTo(100'000));
  });
  for (int i = 0; i < kBlobs; ++i) {
    auto writer = store_->BeginWrite(digests[i], contents[i].size());
    ASSERT_TRUE(writer) << writer.error().message();
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(contents[i].data());
    const std::size_t half = contents[i].size() / 2;
    ASSERT_TRUE((*writer)->WriteAt(half, {bytes + half, contents[i].size() - half}));
    ASSERT_TRUE((*writer)->WriteAt(0, {bytes, half}));
    ASSERT_TRUE((*writer)->Commit());
  }
  done = true;
  for (auto& t : readers) t.join();
  evictor.join();
  EXPECT_GT(hits.load(), 0);
  EXPECT_LE(store_->used_bytes(), 200'000u);
  auto report = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean()) << report->problems.front();
}

TEST(TokenHmacTest, StableSecretPerInstallNeverTheToken) {
  const fs::path dir = fs::temp_directory_path() / ("hubcache-hmac-" + std::to_string(::getpid()));
  const fs::path other = dir / "other";
  fs::remove_all(dir);
  fs::create_directories(other);
  auto first = TokenHmac::LoadOrCreate(dir);
  ASSERT_TRUE(first);
  struct stat st {};
  ASSERT_EQ(::stat((dir / TokenHmac::kFileName).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const Secret alice("hf_alice"), bob("hf_bob");
  EXPECT_EQ(first->Of(alice), first->Of(alice));
  EXPECT_NE(first->Of(alice), first->Of(bob));
  auto again = TokenHmac::LoadOrCreate(dir);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->Of(alice), first->Of(alice));  // same install, same id
  auto elsewhere = TokenHmac::LoadOrCreate(other);
  ASSERT_TRUE(elsewhere);
  EXPECT_NE(elsewhere->Of(alice), first->Of(alice));  // the secret matters
  fs::resize_file(dir / TokenHmac::kFileName, 5);
  EXPECT_EQ(TokenHmac::LoadOrCreate(dir).error(), core::Errc::kCorrupt);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hubcache::store
