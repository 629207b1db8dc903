// The catalog behind `hubcache ls`, `rm` and `pin`: repo specs, summaries,
// and removal that deletes only blobs nothing else refers to.
#include "store/catalog.h"

#include <gtest/gtest.h>

#include "tests/support/bytes.h"
#include "tests/support/temp_dir.h"

namespace hubcache::store {
namespace {

using testing::AsBytes;
using testing::Content;

const std::string kCommitA(40, 'a');
const std::string kCommitB(40, 'b');

TEST(RepoSpecTest, ParsesTypesAndRevisions) {
  auto model = ParseRepoSpec("org/name");
  ASSERT_TRUE(model) << model.error();
  EXPECT_EQ(model->repo, (RepoId{RepoType::kModel, "org/name"}));
  EXPECT_EQ(model->revision, "");
  auto dataset = ParseRepoSpec("datasets/org/data@refs/pr/1");
  ASSERT_TRUE(dataset);
  EXPECT_EQ(dataset->repo, (RepoId{RepoType::kDataset, "org/data"}));
  EXPECT_EQ(dataset->revision, "refs/pr/1");
  auto space = ParseRepoSpec("org/app@v1.0", RepoType::kSpace);
  ASSERT_TRUE(space);
  EXPECT_EQ(space->repo, (RepoId{RepoType::kSpace, "org/app"}));
  auto legacy = ParseRepoSpec("gpt2");
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->repo.name, "gpt2");
  EXPECT_EQ(RepoLabel(dataset->repo), "datasets/org/data");
  EXPECT_EQ(PinName(dataset->repo, "main"), "dataset:org/data@main");
}

TEST(RepoSpecTest, RejectsWhatIsNotARepo) {
  for (const char* bad : {"", "a/b/c", "org/", "/name", "org/na me", "org/..", "org/name@",
                          "datasets/", "org/name\n"}) {
    auto spec = ParseRepoSpec(bad);
    EXPECT_FALSE(spec) << bad;
    // The message quotes what was typed.
    if (!spec) {
      EXPECT_NE(spec.error().find("'" + std::string(bad) + "'"), std::string::npos);
    }
  }
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.cache_dir = dir_.path().string();
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }

  // Stores `content` and records it as `path` of (repo, commit).
  Digest AddFile(const RepoId& repo, const std::string& commit, const std::string& path,
                 const std::string& content) {
    const Digest digest = HashBytes(DigestKind::kSha256, content);
    if (auto writer = store_->BeginWrite(digest, content.size())) {
      EXPECT_TRUE((*writer)->WriteAt(0, AsBytes(content)));
      EXPECT_TRUE((*writer)->Commit());
    }
    EXPECT_TRUE(index().PutFile(repo, commit, path,
                                {.exists = true, .lfs = true, .digest = digest,
                                 .size = content.size()}));
    return digest;
  }
  Index& index() { return store_->index(); }
  bool Has(const Digest& d) { return index().GetBlob(d).value().has_value(); }

  testing::TempDir dir_{"hubcache-catalog-test"};
  std::unique_ptr<BlobStore> store_;
  const RepoId model_{RepoType::kModel, "org/model"};
  const RepoId other_{RepoType::kDataset, "org/data"};
};

TEST_F(CatalogTest, SummarizesReposRevisionsAndCachedBytes) {
  AddFile(model_, kCommitA, "a.bin", Content(1000, 1));
  AddFile(model_, kCommitA, "b.bin", Content(24, 2));
  ASSERT_TRUE(index().PutFile(model_, kCommitA, "missing.bin",
                              {.exists = false, .lfs = false, .digest = {}, .size = 0}));
  // Known but not cached: its blob is not in the store.
  ASSERT_TRUE(index().PutFile(model_, kCommitB, "c.bin",
                              {.exists = true, .lfs = false,
                               .digest = HashBytes(DigestKind::kGitSha1, "x"), .size = 1}));
  ASSERT_TRUE(index().PutRef(model_, "main", {.commit = kCommitA, .fetched_at = 1}));
  ASSERT_TRUE(index().PutRef(model_, "v1", {.commit = kCommitB, .fetched_at = 1}));
  AddFile(other_, kCommitA, "data.csv", Content(10, 3));

  auto summaries = Summarize(index());
  ASSERT_TRUE(summaries);
  ASSERT_EQ(summaries->size(), 2u);
  const RepoSummary& model = (*summaries)[0];
  EXPECT_EQ(model.repo, model_);
  ASSERT_EQ(model.commits.size(), 2u);
  EXPECT_EQ(model.commits[0].commit, kCommitA);
  EXPECT_EQ(model.commits[0].files, 2u);
  EXPECT_EQ(model.commits[0].bytes, 1024u);
  EXPECT_EQ(model.commits[0].cached_bytes, 1024u);
  EXPECT_EQ(model.commits[1].files, 1u);
  EXPECT_EQ(model.commits[1].cached_files, 0u);
  EXPECT_EQ(model.refs, (std::vector<std::pair<std::string, std::string>>{
                            {"main", kCommitA}, {"v1", kCommitB}}));
  EXPECT_GT(model.last_access, 0);
  EXPECT_EQ((*summaries)[1].repo, other_);
}

TEST_F(CatalogTest, RemoveKeepsBlobsOtherReposShare) {
  const Digest shared = AddFile(model_, kCommitA, "shared.bin", Content(100, 1));
  const Digest own = AddFile(model_, kCommitA, "own.bin", Content(200, 2));
  AddFile(other_, kCommitB, "copy.bin", Content(100, 1));
  ASSERT_TRUE(index().PutRef(model_, "main", {.commit = kCommitA, .fetched_at = 1}));
  ASSERT_TRUE(index().PutDoc(model_, kCommitA, "GET /org/model/revision/x",
                             {.body = "{}", .headers = {}, .stored_at = 0}));

  auto report = Remove(*store_, {.repo = model_, .revision = ""});
  ASSERT_TRUE(report) << report.error().message();
  EXPECT_EQ(report->blobs, 1u);
  EXPECT_EQ(report->bytes, 200u);
  EXPECT_FALSE(Has(own));
  EXPECT_FALSE(std::filesystem::exists(store_->BlobPath(own)));
  EXPECT_TRUE(Has(shared));
  EXPECT_FALSE(index().GetRef(model_, "main").value().has_value());
  EXPECT_FALSE(index().GetDoc(model_, kCommitA, "GET /org/model/revision/x").value());
  EXPECT_FALSE(index().GetFile(model_, kCommitA, "own.bin").value().has_value());
  EXPECT_TRUE(index().GetFile(other_, kCommitB, "copy.bin").value().has_value());
  EXPECT_EQ(store_->used_bytes(), 100u);
}

TEST_F(CatalogTest, RemoveOneRevisionKeepsACommitAnotherRefStillNames) {
  const Digest a = AddFile(model_, kCommitA, "a.bin", Content(100, 1));
  const Digest b = AddFile(model_, kCommitB, "b.bin", Content(100, 2));
  ASSERT_TRUE(index().PutRef(model_, "main", {.commit = kCommitA, .fetched_at = 1}));
  ASSERT_TRUE(index().PutRef(model_, "v1", {.commit = kCommitA, .fetched_at = 1}));
  ASSERT_TRUE(index().PutRef(model_, "old", {.commit = kCommitB, .fetched_at = 1}));

  ASSERT_TRUE(Remove(*store_, {.repo = model_, .revision = "v1"}));
  EXPECT_FALSE(index().GetRef(model_, "v1").value().has_value());
  EXPECT_TRUE(Has(a)) << "main still names commit A";

  ASSERT_TRUE(Remove(*store_, {.repo = model_, .revision = "old"}));
  EXPECT_FALSE(Has(b));
  EXPECT_FALSE(index().GetFile(model_, kCommitB, "b.bin").value().has_value());

  auto by_commit = Remove(*store_, {.repo = model_, .revision = kCommitA});
  ASSERT_TRUE(by_commit);
  EXPECT_FALSE(Has(a));
  EXPECT_FALSE(index().GetRef(model_, "main").value().has_value());
}

TEST_F(CatalogTest, RemoveDropsTheReposPinsButNotOthers) {
  const Digest a = AddFile(model_, kCommitA, "a.bin", Content(100, 1));
  const Digest shared = AddFile(model_, kCommitA, "s.bin", Content(50, 2));
  AddFile(other_, kCommitA, "s.bin", Content(50, 2));
  ASSERT_TRUE(index().Pin(PinName(model_, "main"), {a, shared}));
  ASSERT_TRUE(index().Pin(PinName(other_, "main"), {shared}));

  auto report = Remove(*store_, {.repo = model_, .revision = ""});
  ASSERT_TRUE(report);
  EXPECT_EQ(report->pins, 1u);
  EXPECT_FALSE(Has(a));
  ASSERT_TRUE(Has(shared));
  EXPECT_EQ(index().GetBlob(shared).value()->pins, 1u);
}

}  // namespace
}  // namespace hubcache::store
