#include "store/index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "store/blob_index.h"
#include "store/errc.h"
#include "store/index_env.h"
#include "store/options.h"

#include "tests/support/temp_dir.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;

Digest D(int i) { return HashBytes(i % 2 ? DigestKind::kSha256 : DigestKind::kGitSha1, std::to_string(i)); }

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Reopen();
  }
  void TearDown() override {
    blobs_.reset();
    index_.reset();
  }
  void Reopen() {
    blobs_.reset();
    index_.reset();
    auto env = internal::IndexEnv::Open(dir_, Options().index_max_bytes);
    ASSERT_TRUE(env) << env.error().message();
    index_ = std::make_unique<Index>(*env);
    blobs_ = std::make_unique<BlobIndex>(*env);
  }
  testing::TempDir temp_{"hubcache-index-test"};
  const fs::path dir_ = temp_.path();
  std::unique_ptr<Index> index_;
  std::unique_ptr<BlobIndex> blobs_;  // the store's writer of blob records
};

TEST_F(IndexTest, PutGetDeleteSurviveReopen) {
  const BlobRecord record{1234, 100, 200, 0};
  ASSERT_TRUE(blobs_->PutBlob(D(1), record));
  ASSERT_TRUE(blobs_->PutBlob(D(2), {5, 1, 1, 1}));
  Reopen();
  auto got = index_->GetBlob(D(1));
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ(**got, record);
  EXPECT_EQ(index_->BlobCount().value(), 2u);
  EXPECT_TRUE(blobs_->DeleteBlob(D(1)).value());
  EXPECT_FALSE(blobs_->DeleteBlob(D(1)).value());
  EXPECT_FALSE(index_->GetBlob(D(1)).value());
  EXPECT_EQ(index_->BlobCount().value(), 1u);
}

TEST_F(IndexTest, ByAgeIsLeastRecentlyUsedFirstAndFollowsTouches) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(blobs_->PutBlob(D(i), {1, 0, 100 + i, 0}));
  blobs_->Touch(D(0), 500);  // now the most recent
  blobs_->Touch(D(3), 50);   // older than it was: ignored
  ASSERT_TRUE(blobs_->Flush());
  std::vector<Digest> order;
  ASSERT_TRUE(blobs_->ForEachByAge([&](const Digest& d, const BlobRecord&) {
    order.push_back(d);
    return true;
  }));
  EXPECT_EQ(order, (std::vector<Digest>{D(1), D(2), D(3), D(4), D(0)}));
  EXPECT_EQ(index_->GetBlob(D(0)).value()->last_access, 500);
  EXPECT_EQ(index_->GetBlob(D(3)).value()->last_access, 103);
}

TEST_F(IndexTest, TouchesAreFlushedOnClose) {
  ASSERT_TRUE(blobs_->PutBlob(D(7), {1, 0, 10, 0}));
  blobs_->Touch(D(7), 99);
  blobs_->Touch(D(8), 99);  // not indexed: ignored
  Reopen();
  EXPECT_EQ(index_->GetBlob(D(7)).value()->last_access, 99);
  EXPECT_FALSE(index_->GetBlob(D(8)).value());
}

TEST_F(IndexTest, PinsCountNamesAndSurviveUntilUnpinned) {
  ASSERT_TRUE(blobs_->PutBlob(D(1), {1, 0, 0, 0}));
  ASSERT_TRUE(index_->Pin("model/org/a@main", {D(1), D(2)}));
  ASSERT_TRUE(index_->Pin("model/org/a@main", {D(1)}));  // same name twice counts once
  ASSERT_TRUE(index_->Pin("model/org/b@v1", {D(1)}));
  EXPECT_EQ(index_->GetBlob(D(1)).value()->pins, 2u);
  // D(2) was pinned before it existed: it arrives pinned.
  ASSERT_TRUE(blobs_->PutBlob(D(2), {1, 0, 0, 0}));
  EXPECT_EQ(index_->GetBlob(D(2)).value()->pins, 1u);
  // Replacing a record keeps its pins.
  ASSERT_TRUE(blobs_->PutBlob(D(1), {1, 0, 5, 0}));
  EXPECT_EQ(index_->GetBlob(D(1)).value()->pins, 2u);
  EXPECT_EQ(index_->Unpin("model/org/a@main").value(), 2u);
  EXPECT_EQ(index_->GetBlob(D(1)).value()->pins, 1u);
  EXPECT_EQ(index_->GetBlob(D(2)).value()->pins, 0u);
  std::vector<std::string> names;
  ASSERT_TRUE(index_->ForEachPin([&](std::string_view name, const Digest& d) {
    names.push_back(std::string(name) + ":" + d.Hex().substr(0, 4));
    return true;
  }));
  EXPECT_EQ(names, std::vector<std::string>{"model/org/b@v1:" + D(1).Hex().substr(0, 4)});
  EXPECT_EQ(index_->Unpin("nothing").value(), 0u);
  EXPECT_FALSE(index_->Pin("", {D(1)}));
}

TEST_F(IndexTest, FilesAtACommitIncludingNegativeEntriesAndLongPaths) {
  const RepoId repo{RepoType::kModel, "org/model"};
  const std::string commit(40, 'a');
  const FileRecord config{true, false, HashBytes(DigestKind::kGitSha1, "{}"), 2};
  const FileRecord weights{true, true, HashBytes(DigestKind::kSha256, "w"), 1 << 30};
  const FileRecord missing{false, false, std::nullopt, 0};
  const std::string long_path = "deep/" + std::string(600, 'x') + "/file.bin";
  ASSERT_TRUE(index_->PutFile(repo, commit, "config.json", config));
  ASSERT_TRUE(index_->PutFile(repo, commit, "model.safetensors", weights));
  ASSERT_TRUE(index_->PutFile(repo, commit, "nope.txt", missing));
  ASSERT_TRUE(index_->PutFile(repo, commit, long_path, config));
  ASSERT_TRUE(index_->PutFile({RepoType::kDataset, "org/model"}, commit, "config.json", weights));
  Reopen();
  EXPECT_EQ(index_->GetFile(repo, commit, "config.json").value(), config);
  EXPECT_EQ(index_->GetFile(repo, commit, "model.safetensors").value(), weights);
  EXPECT_EQ(index_->GetFile(repo, commit, "nope.txt").value(), missing);
  EXPECT_EQ(index_->GetFile(repo, commit, long_path).value(), config);
  EXPECT_FALSE(index_->GetFile(repo, commit, "other").value());
  EXPECT_FALSE(index_->GetFile(repo, std::string(40, 'b'), "config.json").value());
  EXPECT_EQ(index_->GetFile({RepoType::kDataset, "org/model"}, commit, "config.json").value(),
            weights);
  std::vector<std::string> paths;
  ASSERT_TRUE(index_->ForEachFile(repo, commit, [&](std::string_view p, const FileRecord&) {
    paths.emplace_back(p);
    return true;
  }));
  EXPECT_EQ(paths.size(), 4u);
  EXPECT_NE(std::find(paths.begin(), paths.end(), long_path), paths.end());
  EXPECT_FALSE(index_->PutFile(repo, commit, std::string("a\0b", 3), config));
}

TEST_F(IndexTest, RefsAccessGrantsAndDocs) {
  const RepoId repo{RepoType::kSpace, "org/app"};
  const RefRecord main{std::string(40, 'c'), 1000};
  ASSERT_TRUE(index_->PutRef(repo, "main", main));
  ASSERT_TRUE(index_->PutRef(repo, "refs/pr/1", {std::string(40, 'd'), 2000}));
  EXPECT_EQ(index_->GetRef(repo, "main").value(), main);
  EXPECT_FALSE(index_->GetRef(repo, "dev").value());
  std::vector<std::string> revisions;
  ASSERT_TRUE(index_->ForEachRef([&](const RepoId& r, std::string_view rev, const RefRecord&) {
    EXPECT_EQ(r, repo);
    revisions.emplace_back(rev);
    return true;
  }));
  EXPECT_EQ(revisions, (std::vector<std::string>{"main", "refs/pr/1"}));

  ASSERT_TRUE(index_->PutAccess(repo, {Visibility::kPublic, 42}));
  EXPECT_EQ(index_->GetAccess(repo).value(), (AccessRecord{Visibility::kPublic, 42}));
  EXPECT_FALSE(index_->GetAccess({RepoType::kModel, "org/app"}).value());

  TokenId alice{};
  alice[0] = 1;
  TokenId bob{};
  bob[0] = 2;
  ASSERT_TRUE(index_->PutGrant(alice, repo, 5000));
  EXPECT_EQ(index_->GetGrant(alice, repo).value(), 5000);
  EXPECT_FALSE(index_->GetGrant(bob, repo).value());

  const DocRecord doc{R"({"id":"org/app"})", {{"Link", "<x>; rel=\"next\""}}, 7};
  ASSERT_TRUE(index_->PutDoc(repo, main.commit, "tree?recursive=true", doc));
  Reopen();
  EXPECT_EQ(index_->GetDoc(repo, main.commit, "tree?recursive=true").value(), doc);
  EXPECT_FALSE(index_->GetDoc(repo, main.commit, "tree?recursive=false").value());
}

TEST_F(IndexTest, SchemaMismatchIsRefusedWithAClearError) {
  ASSERT_TRUE(index_->TEST_SetSchemaVersion(Index::kSchemaVersion + 1));
  blobs_.reset();
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
        ASSERT_TRUE(blobs_->PutBlob(D(n), {static_cast<std::uint64_t>(n), 0, n, 0}));
        auto got = index_->GetBlob(D(n));
        ASSERT_TRUE(got && *got);
        EXPECT_EQ((*got)->size, static_cast<std::uint64_t>(n));
        blobs_->Touch(D(n), n + 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(blobs_->Flush());
  EXPECT_EQ(index_->BlobCount().value(), static_cast<std::uint64_t>(kThreads * kPerThread));
  std::size_t seen = 0;
  ASSERT_TRUE(index_->ForEachBlob([&](const Digest& d, const BlobRecord& r) {
    EXPECT_EQ(r.last_access, static_cast<std::int64_t>(r.size) + 1) << d.Hex();
    ++seen;
    return true;
  }));
  EXPECT_EQ(seen, static_cast<std::size_t>(kThreads * kPerThread));
}

TEST_F(IndexTest, AFailedBatchOfTouchesIsCountedNotDroppedSilently) {
  ASSERT_TRUE(blobs_->PutBlob(D(1), {1, 0, 10, 0}));
  blobs_->TEST_env().TEST_FailTouchBatches(true);
  // Enough touches (4096 blobs) to make the writer write a batch now.
  blobs_->Touch(D(1), 20);
  for (int i = 2; i <= 4096; ++i) blobs_->Touch(D(i), 20);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (blobs_->touch_failures() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(blobs_->touch_failures(), 1u);
  EXPECT_EQ(index_->GetBlob(D(1)).value()->last_access, 10);
  // Other writes in the same group are unharmed, and later batches work.
  blobs_->TEST_env().TEST_FailTouchBatches(false);
  blobs_->Touch(D(1), 99);
  ASSERT_TRUE(blobs_->Flush());
  EXPECT_EQ(index_->GetBlob(D(1)).value()->last_access, 99);
  EXPECT_EQ(blobs_->touch_failures(), 1u);
}

}  // namespace
}  // namespace hubcache::store
