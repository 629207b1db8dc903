// The cache directory on a small filesystem fills up mid-write: the write
// fails cleanly, nothing corrupt remains, and the store keeps working.
// Needs root to mount a tmpfs; otherwise it is skipped with the reason.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/blob_store.h"
#include "store/errc.h"
#include "store/fsck.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hubcache-diskfull-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=8m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    store_.reset();
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    fs::remove_all(dir_);
  }
  void Open(double min_free_percent) {
    store_.reset();
    Options options;
    options.cache_dir = (dir_ / "cache").string();
    options.min_free_percent = min_free_percent;
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  Result<void> Put(const std::string& content) {
    auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, content), content.size());
    if (!writer) return Fail(writer.error());
    if (auto w = (*writer)->WriteAt(0, {reinterpret_cast<const std::uint8_t*>(content.data()),
                                        content.size()});
        !w) {
      return w;
    }
    return (*writer)->Commit();
  }

  fs::path dir_;
  bool mounted_ = false;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(DiskFullTest, FillingUpMidWriteFailsCleanly) {
  Open(/*min_free_percent=*/0);  // let the write run into the wall
  const std::string small(10'000, 's');
  ASSERT_TRUE(Put(small));

  const std::string chunk(1 << 20, 'b');
  const std::string big_digest_source(16 << 20, 'b');
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, big_digest_source), 16 << 20);
  ASSERT_TRUE(writer);
  ErrorCode failure;
  for (std::uint64_t offset = 0; offset < (16u << 20) && !failure; offset += chunk.size()) {
    auto w = (*writer)->WriteAt(offset, {reinterpret_cast<const std::uint8_t*>(chunk.data()),
                                         chunk.size()});
    if (!w) failure = w.error();
  }
  ASSERT_TRUE(failure) << "an 8 MiB filesystem took 16 MiB";
  EXPECT_EQ(failure, boost::system::errc::no_space_on_device) << failure.message();
  EXPECT_EQ((*writer)->Commit().error(), Errc::kIncomplete);
  writer->reset();  // abandons the download: the staging file goes
  EXPECT_TRUE(fs::is_empty(dir_ / "cache" / "staging"));

  auto report = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean());
  EXPECT_TRUE(store_->Lookup(HashBytes(DigestKind::kSha256, small)));
  EXPECT_TRUE(Put(std::string(20'000, 'c'))) << "the store must keep working";
  Open(0);  // and reopen cleanly
  EXPECT_TRUE(Fsck(*store_, FsckMode::kVerify)->clean());
}

TEST_F(DiskFullTest, FreeSpaceFloorRefusesUpFront) {
  Open(/*min_free_percent=*/10);
  auto writer = store_->BeginWrite(HashBytes(DigestKind::kSha256, "x"), 16 << 20);
  ASSERT_FALSE(writer);
  EXPECT_EQ(writer.error(), Errc::kNoSpace);
  EXPECT_TRUE(Put(std::string(100'000, 'd')));
}

}  // namespace
}  // namespace hubcache::store
