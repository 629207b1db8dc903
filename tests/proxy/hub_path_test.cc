#include "proxy/hub_path.h"

#include <gtest/gtest.h>

#include "core/errc.h"

namespace hubcache::proxy {
namespace {

using store::RepoType;

TEST(HubPathTest, ModelDatasetSpaceAndLegacyRepos) {
  auto model = ParseResolvePath("/org/model/resolve/main/config.json");
  ASSERT_TRUE(model);
  EXPECT_EQ(model->repo.type, RepoType::kModel);
  EXPECT_EQ(model->repo.name, "org/model");
  EXPECT_EQ(model->revision, "main");
  EXPECT_EQ(model->path, "config.json");
  auto dataset = ParseResolvePath("/datasets/org/data/resolve/v1.0/data/train/part-0.parquet");
  ASSERT_TRUE(dataset);
  EXPECT_EQ(dataset->repo.type, RepoType::kDataset);
  EXPECT_EQ(dataset->repo.name, "org/data");
  EXPECT_EQ(dataset->path, "data/train/part-0.parquet");
  auto space = ParseResolvePath("/spaces/org/app/resolve/main/app.py");
  ASSERT_TRUE(space);
  EXPECT_EQ(space->repo.type, RepoType::kSpace);
  auto legacy = ParseResolvePath("/gpt2/resolve/main/config.json");
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->repo.name, "gpt2");
}

TEST(HubPathTest, RevisionIsDecodedAfterSplitting) {
  auto pr = ParseResolvePath("/org/model/resolve/refs%2Fpr%2F1/config.json");
  ASSERT_TRUE(pr);
  EXPECT_EQ(pr->revision, "refs/pr/1");
  EXPECT_EQ(pr->path, "config.json");
  auto branch = ParseResolvePath("/org/model/resolve/feat%2Fx/a/b.txt");
  ASSERT_TRUE(branch);
  EXPECT_EQ(branch->revision, "feat/x");
  EXPECT_EQ(branch->path, "a/b.txt");
  auto raw_pr = ParseResolvePath("/org/model/resolve/refs/pr/12/config.json");
  ASSERT_TRUE(raw_pr);
  EXPECT_EQ(raw_pr->revision, "refs/pr/12");
  EXPECT_EQ(raw_pr->path, "config.json");
}

TEST(HubPathTest, PathIsDecodedAsUtf8AndPlusStaysPlus) {
  // Python encodes fully; JS leaves + & = @ : literal. Both are the same file.
  auto python = ParseResolvePath("/org/model/resolve/main/dir/%C3%A9%20x%2By%231.txt");
  auto js = ParseResolvePath("/org/model/resolve/main/dir/%C3%A9%20x+y%231.txt");
  ASSERT_TRUE(python);
  ASSERT_TRUE(js);
  EXPECT_EQ(python->path, "dir/\xC3\xA9 x+y#1.txt");
  EXPECT_EQ(js->path, python->path);
}

TEST(HubPathTest, ResolveCachePaths) {
  const std::string commit(40, 'a');
  auto ref = ParseResolveCachePath("/api/resolve-cache/models/org/model/" + commit + "/sub/config.json");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->repo.name, "org/model");
  EXPECT_EQ(ref->revision, commit);
  EXPECT_EQ(ref->path, "sub/config.json");
  auto legacy = ParseResolveCachePath("/api/resolve-cache/datasets/squad/" + commit + "/x");
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->repo.type, RepoType::kDataset);
  EXPECT_EQ(legacy->repo.name, "squad");
  EXPECT_FALSE(ParseResolveCachePath("/api/resolve-cache/models/org/model/main/config.json"));
  EXPECT_FALSE(ParseResolveCachePath("/api/resolve-cache/buckets/org/model/" + commit + "/x"));
}

TEST(HubPathTest, MalformedInputIsRefused) {
  for (const char* bad : {
           "/org/model/resolve/main/",                // no file
           "/org/model/resolve/main",                 // no file
           "/org/model/resolve//config.json",         // empty revision
           "/org/model/resolve/main/../../etc/passwd",
           "/org/model/resolve/main/a/./b",
           "/org/model/resolve/main/a//b",
           "/org/model/resolve/main/%2E%2E/x",        // encoded ..
           "/org/model/resolve/main/a%00b",           // NUL
           "/org/model/resolve/main/a%0Ab",           // newline
           "/org/model/resolve/main/bad%zzescape",
           "/org/model/resolve/main/trailing%2",
           "/org/model/resolve/main/%C3%28",          // invalid UTF-8
           "/org/model/resolve/main/%C0%AF",          // overlong
           "/../model/resolve/main/x",
           "/org/mo del/resolve/main/x",
           "/org/model/resolve/..%2F../x",
           "/org/model/resolve/a%20b/x",              // not a git ref name
           "/org/model/resolve/main~1/x",
       }) {
    auto parsed = ParseResolvePath(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_EQ(parsed.error(), core::Errc::kInvalidArgument) << bad;
    }
  }
  const std::string long_name(300, 'a');
  EXPECT_FALSE(ParseResolvePath("/org/model/resolve/main/" + long_name));
  EXPECT_FALSE(ParseResolvePath("/" + std::string(100, 'o') + "/m/resolve/main/x"));
}

TEST(HubPathTest, OtherPathsAreNotResolvePaths) {
  for (const char* other : {"/", "/healthz", "/api/models/org/model", "/org/model/raw/main/x",
                            "/a/b/c/resolve/main/x"}) {
    auto parsed = ParseResolvePath(other);
    ASSERT_FALSE(parsed) << other;
    EXPECT_EQ(parsed.error(), core::Errc::kNotFound) << other;
  }
}

TEST(HubPathTest, PercentEncodingRoundTrips) {
  EXPECT_EQ(PercentEncode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(PercentEncode("dir/é x+y#1.txt", true), "dir/%C3%A9%20x%2By%231.txt");
  EXPECT_EQ(*PercentDecode(PercentEncode("a b/c+d", true)), "a b/c+d");
  EXPECT_TRUE(store::IsCommitHash(std::string(40, 'f')));
  EXPECT_FALSE(store::IsCommitHash(std::string(40, 'F')));
  EXPECT_FALSE(store::IsCommitHash("main"));
}

}  // namespace
}  // namespace hubcache::proxy
