#include "store/index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "store/errc.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;

Digest D(int i) { return HashBytes(i % 2 ? DigestKind::kSha256 : DigestKind::kGitSha1, std::to_string(i)); }

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hubcache-index-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    index_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    index_.reset();
    auto index = Index::Open(dir_);
    ASSERT_TRUE(index) << index.error().message();
    index_ = std::move(*index);
  }
  fs::path dir_;
  std::unique_ptr<Index> index_;
};

TEST_F(IndexTest, PutGetDeleteSurviveReopen) {
  const BlobRecord record{1234, 100, 200, 0};
  ASSERT_TRUE(index_->PutBlob(D(1), record));
  ASSERT_TRUE(index_->PutBlob(D(2), {5, 1, 1, 1}));
  Reopen();
  auto got = index_->GetBlob(D(1));
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ(**got, record);
  EXPECT_EQ(index_->BlobCount().value(), 2u);
  EXPECT_TRUE(index_->DeleteBlob(D(1)).value());
  EXPECT_FALSE(index_->DeleteBlob(D(1)).value());
  EXPECT_FALSE(index_->GetBlob(D(1)).value());
  EXPECT_EQ(index_->BlobCount().value(), 1u);
}

TEST_F(IndexTest, ByAgeIsLeastRecentlyUsedFirstAndFollowsTouches) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(index_->PutBlob(D(i), {1, 0, 100 + i, 0}));
  index_->Touch(D(0), 500);  // now the most recent
  index_->Touch(D(3), 50);   // older than it was: ignored
  ASSERT_TRUE(index_->Flush());
  std::vector<Digest> order;
  ASSERT_TRUE(index_->ForEachByAge([&](const Digest& d, const BlobRecord&) {
    order.push_back(d);
    return true;
  }));
  EXPECT_EQ(order, (std::vector<Digest>{D(1), D(2), D(3), D(4), D(0)}));
  EXPECT_EQ(index_->GetBlob(D(0)).value()->last_access, 500);
  EXPECT_EQ(index_->GetBlob(D(3)).value()->last_access, 103);
}

TEST_F(IndexTest, TouchesAreFlushedOnClose) {
  ASSERT_TRUE(index_->PutBlob(D(7), {1, 0, 10, 0}));
  index_->Touch(D(7), 99);
  index_->Touch(D(8), 99);  // not indexed: ignored
  Reopen();
  EXPECT_EQ(index_->GetBlob(D(7)).value()->last_access, 99);
  EXPECT_FALSE(index_->GetBlob(D(8)).value());
}

TEST_F(IndexTest, PinsSaturateAtZero) {
  ASSERT_TRUE(index_->PutBlob(D(1), {1, 0, 0, 0}));
  ASSERT_TRUE(index_->AddPins(D(1), 2));
  EXPECT_EQ(index_->GetBlob(D(1)).value()->pins, 2u);
  ASSERT_TRUE(index_->AddPins(D(1), -5));
  EXPECT_EQ(index_->GetBlob(D(1)).value()->pins, 0u);
  ASSERT_TRUE(index_->AddPins(D(99), 1));  // absent: nothing happens
  EXPECT_FALSE(index_->GetBlob(D(99)).value());
}

TEST_F(IndexTest, SchemaMismatchIsRefusedWithAClearError) {
  ASSERT_TRUE(index_->TEST_SetSchemaVersion(Index::kSchemaVersion + 1));
  index_.reset();
  auto reopened = Index::Open(dir_);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error(), Errc::kSchemaMismatch);
  EXPECT_NE(reopened.error().message().find("schema"), std::string::npos);
}

TEST_F(IndexTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int n = t * kPerThread + i;
        ASSERT_TRUE(index_->PutBlob(D(n), {static_cast<std::uint64_t>(n), 0, n, 0}));
        auto got = index_->GetBlob(D(n));
        ASSERT_TRUE(got && *got);
        EXPECT_EQ((*got)->size, static_cast<std::uint64_t>(n));
        index_->Touch(D(n), n + 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(index_->Flush());
  EXPECT_EQ(index_->BlobCount().value(), static_cast<std::uint64_t>(kThreads * kPerThread));
  std::size_t seen = 0;
  ASSERT_TRUE(index_->ForEachBlob([&](const Digest& d, const BlobRecord& r) {
    EXPECT_EQ(r.last_access, static_cast<std::int64_t>(r.size) + 1) << d.Hex();
    ++seen;
    return true;
  }));
  EXPECT_EQ(seen, static_cast<std::size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace hubcache::store
