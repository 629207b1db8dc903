#include "tests/support/temp_dir.h"
#include "tests/support/bytes.h"
#include "store/fsck.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "core/errc.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using testing::Content;

class FsckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open(true);
  }
  void TearDown() override {
    store_.reset();
  }
  void Open(bool recover) {
    store_.reset();
    Options options;
    options.cache_dir = root_.string();
    auto store = BlobStore::Open(options, recover);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  Digest Put(const std::string& content) {
    const Digest digest = HashBytes(DigestKind::kSha256, content);
    auto writer = store_->BeginWrite(digest, content.size());
    EXPECT_TRUE(writer);
    EXPECT_TRUE((*writer)->WriteAt(
        0, {reinterpret_cast<const std::uint8_t*>(content.data()), content.size()}));
    EXPECT_TRUE((*writer)->Commit());
    return digest;
  }
  void FlipByte(const fs::path& path, std::size_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x01));
  }
  // Places a file directly in blobs/, as a crash between rename and index
  // commit would leave it.
  fs::path PlaceOrphan(const std::string& content, bool lie = false) {
    const Digest digest = HashBytes(DigestKind::kSha256, content);
    const fs::path path = store_->BlobPath(digest);
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << (lie ? content + "x" : content);
    return path;
  }

  testing::TempDir temp_{"hubcache-fsck-test"};
  const fs::path root_ = temp_.path();
  std::unique_ptr<BlobStore> store_;
};

TEST_F(FsckTest, CleanStoreVerifiesClean) {
  Put(Content(1000, 1));
  Put(Content(2000, 2));
  auto report = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->clean());
  EXPECT_EQ(report->blobs_checked, 2u);
  EXPECT_EQ(report->bytes_hashed, 3000u);
  EXPECT_TRUE(report->problems.empty());
}

TEST_F(FsckTest, VerifyFindsACorruptBlobAndRepairRemovesIt) {
  const Digest good = Put(Content(1000, 3));
  const Digest bad = Put(Content(1000, 4));
  FlipByte(store_->BlobPath(bad), 500);
  auto report = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->clean());
  EXPECT_EQ(report->corrupt, 1u);
  ASSERT_EQ(report->problems.size(), 1u);
  EXPECT_NE(report->problems[0].find(bad.Hex()), std::string::npos);
  EXPECT_TRUE(store_->Lookup(bad)) << "verify alone changes nothing";

  report = Fsck(*store_, FsckMode::kRepair);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->corrupt, 1u);
  EXPECT_TRUE(report->repaired);
  EXPECT_EQ(store_->Lookup(bad).error(), core::Errc::kNotFound);
  EXPECT_FALSE(fs::exists(store_->BlobPath(bad)));
  EXPECT_TRUE(store_->Lookup(good));
  EXPECT_TRUE(Fsck(*store_, FsckMode::kVerify)->clean());
}

TEST_F(FsckTest, RecoverDropsEntriesWhoseFileIsMissingOrTruncated) {
  const Digest missing = Put(Content(100, 5));
  const Digest truncated = Put(Content(100, 6));
  const Digest fine = Put(Content(100, 7));
  fs::remove(store_->BlobPath(missing));
  fs::resize_file(store_->BlobPath(truncated), 10);
  Open(false);
  auto report = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->missing, 1u);
  EXPECT_EQ(report->wrong_size, 1u);
  Open(true);  // recovery at open
  EXPECT_FALSE(store_->index().GetBlob(missing).value());
  EXPECT_FALSE(store_->index().GetBlob(truncated).value());
  EXPECT_FALSE(fs::exists(store_->BlobPath(truncated)));
  EXPECT_TRUE(store_->Lookup(fine));
  EXPECT_TRUE(Fsck(*store_, FsckMode::kVerify)->clean());
}

TEST_F(FsckTest, RecoverAdoptsVerifiedOrphansAndRemovesOthers) {
  const std::string content = Content(3000, 8);
  const fs::path good = PlaceOrphan(content);
  const fs::path lying = PlaceOrphan(Content(3000, 9), /*lie=*/true);
  const fs::path stray = root_ / "blobs" / "sha1" / "zz" / "not-a-digest";
  fs::create_directories(stray.parent_path());
  std::ofstream(stray) << "junk";
  Open(false);
  auto verify = Fsck(*store_, FsckMode::kVerify);
  ASSERT_TRUE(verify);
  // The verified one is what a crash between rename and index write leaves:
  // not a problem, the next open adopts it.
  EXPECT_EQ(verify->orphans, 2u);
  EXPECT_EQ(verify->interrupted, 1u);
  Open(true);
  auto blob = store_->Lookup(HashBytes(DigestKind::kSha256, content));
  ASSERT_TRUE(blob) << "a verified orphan is adopted";
  EXPECT_EQ(blob->size, content.size());
  EXPECT_FALSE(fs::exists(lying));
  EXPECT_FALSE(fs::exists(stray));
  EXPECT_TRUE(fs::exists(good));
  EXPECT_TRUE(Fsck(*store_, FsckMode::kVerify)->clean());
}

TEST_F(FsckTest, RecoverRemovesStagingLeftovers) {
  std::ofstream(root_ / "staging" / "sha256-abc.part") << "partial";
  Open(true);
  EXPECT_TRUE(fs::is_empty(root_ / "staging"));
}

}  // namespace
}  // namespace hubcache::store
