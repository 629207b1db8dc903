// The disk misbehaves under the store, through the fault-injecting disk seam
// (store/disk.h, tests/support/faulty_disk.h), so these run everywhere
// without root: the disk fills up mid-write, writes come back short, reads
// fail with EIO, the free-space floor refuses up front. Each time the write
// fails cleanly, nothing corrupt remains, and the store keeps working.
#include "store/disk.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "store/blob_store.h"
#include "store/errc.h"
#include "store/fsck.h"
#include "store/small_blob_cache.h"
#include "tests/support/bytes.h"
#include "tests/support/faulty_disk.h"
#include "tests/support/temp_dir.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using hubcache::testing::AsBytes;
using hubcache::testing::Content;
using hubcache::testing::ReadAll;

class DiskFaultTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(0); }
  void TearDown() override { store_.reset(); }
  void Open(double min_free_percent) {
    store_.reset();
    Options options;
    options.cache_dir = (temp_.path() / "cache").string();
    options.min_free_percent = min_free_percent;
    options.disk = &disk_;
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  Result<void> Put(const std::string& content) {
    auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), content.size());
    if (!writer) return Fail(writer.error());
    if (auto w = (*writer)->WriteAt(0, AsBytes(content)); !w) return w;
    return (*writer)->Commit();
  }
  bool StagingEmpty() const { return fs::is_empty(temp_.path() / "cache" / "staging"); }

  hubcache::testing::TempDir temp_{"hubcache-diskfault-test"};
  hubcache::testing::FaultyDisk disk_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(DiskFaultTest, FillingUpMidWriteFailsCleanly) {
  const std::string small(10'000, 's');
  ASSERT_TRUE(Put(small));
  disk_.space_left = 8 << 20;  // 8 MiB left on the device

  const std::string big = Content(16 << 20, 3);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, big), big.size());
  ASSERT_TRUE(writer);
  ErrorCode failure;
  for (std::uint64_t offset = 0; offset < big.size() && !failure; offset += 1 << 20) {
    auto w = (*writer)->WriteAt(offset, AsBytes(big, offset, 1 << 20));
    if (!w) failure = w.error();
  }
  ASSERT_TRUE(failure) << "8 MiB of space took 16 MiB";
  EXPECT_EQ(failure, boost::system::errc::no_space_on_device) << failure.message();
  EXPECT_EQ((*writer)->Commit().error(), Errc::kIncomplete);
  writer->reset();  // abandons the download: the staging file goes
  EXPECT_TRUE(StagingEmpty());
  EXPECT_EQ(store_->reserved_bytes(), 0u);

  auto report = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean());
  EXPECT_TRUE(store_->Lookup(HashBytes(DigestKind::kSha256, small)));
  disk_.space_left = -1;  // space came back
  EXPECT_TRUE(Put(std::string(20'000, 'c'))) << "the store must keep working";
  EXPECT_TRUE(Put(big)) << "and take the big blob now";
  Open(0);  // and reopen cleanly
  EXPECT_TRUE(Fsck(*store_, FsckMode::kVerify)->clean());
}

TEST_F(DiskFaultTest, ARangeThatHitsTheWallCanBeWrittenAgainOnceThereIsRoom) {
  const std::string content = Content(3 << 20, 4);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), content.size());
  ASSERT_TRUE(writer);
  disk_.space_left = (1 << 20) + 100;
  auto first = (*writer)->WriteAt(0, AsBytes(content, 0, 2 << 20));
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error(), boost::system::errc::no_space_on_device);
  disk_.space_left = -1;
  // The retry (a resumed download) writes the same range again.
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 2 << 20)));
  ASSERT_TRUE((*writer)->WriteAt(2 << 20, AsBytes(content, 2 << 20)));
  ASSERT_TRUE((*writer)->Commit());
  auto blob = store_->Lookup(HashBytes(DigestKind::kSha256, content));
  ASSERT_TRUE(blob);
  EXPECT_TRUE(ReadAll(blob->fd.get()) == content);
}

TEST_F(DiskFaultTest, ShortWritesStillStoreExactlyTheBytes) {
  disk_.max_write = 777;
  const std::string content = Content(1 << 20, 5);
  ASSERT_TRUE(Put(content));
  EXPECT_GT(disk_.writes.load(), (1u << 20) / 777);
  auto blob = store_->Lookup(HashBytes(DigestKind::kSha256, content));
  ASSERT_TRUE(blob);
  EXPECT_TRUE(ReadAll(blob->fd.get()) == content);
  EXPECT_TRUE(Fsck(*store_, FsckMode::kVerify)->clean());
}

TEST_F(DiskFaultTest, EioReadingBytesBackFailsTheWriteUntilTheDiskRecovers) {
  const std::string content = Content(2 << 20, 6);
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  auto writer = store_->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  // The second half first: the hasher must read it back from the file once
  // the first half makes it contiguous.
  ASSERT_TRUE((*writer)->WriteAt(1 << 20, AsBytes(content, 1 << 20)));
  disk_.read_eio = true;
  auto joined = (*writer)->WriteAt(0, AsBytes(content, 0, 1 << 20));
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), boost::system::errc::io_error);
  EXPECT_EQ((*writer)->Commit().error(), Errc::kIncomplete) << "unhashed bytes were taken";
  disk_.read_eio = false;
  // Any later write (a retry of the same bytes) lets hashing continue.
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, 10)));
  ASSERT_TRUE((*writer)->Commit());
  EXPECT_TRUE(store_->Lookup(digest));
}

TEST_F(DiskFaultTest, EioReadingASmallBlobIsNeverCachedAsContent) {
  SmallBlobCache cache(*store_);
  const std::string content = Content(5000, 7);
  ASSERT_TRUE(Put(content));
  const Digest digest = HashBytes(DigestKind::kSha256, content);
  disk_.read_eio = true;
  EXPECT_FALSE(cache.Get(digest));
  EXPECT_EQ(cache.bytes(), 0u);
  disk_.read_eio = false;
  auto got = cache.Get(digest);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, content);
}

TEST_F(DiskFaultTest, VerifyReportsABlobItCannotRead) {
  const std::string content = Content(5000, 8);
  ASSERT_TRUE(Put(content));
  disk_.read_eio = true;
  auto report = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->clean());
  disk_.read_eio = false;
  EXPECT_TRUE(Fsck(*store_, FsckMode::kVerify)->clean());
}

TEST_F(DiskFaultTest, FreeSpaceFloorRefusesUpFront) {
  disk_.fake_total = 100 << 20;
  disk_.fake_available = 12 << 20;  // 12% free
  Open(/*min_free_percent=*/10);
  // 16 MiB would leave less than the 10 MiB floor.
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, "x"), 16 << 20);
  ASSERT_FALSE(writer);
  EXPECT_EQ(writer.error(), Errc::kNoSpace);
  EXPECT_EQ(store_->reserved_bytes(), 0u);
  EXPECT_TRUE(StagingEmpty());
  EXPECT_TRUE(Put(std::string(100'000, 'd')));
}

}  // namespace
}  // namespace hubcache::store
