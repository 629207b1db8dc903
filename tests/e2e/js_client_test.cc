// The real huggingface.js client (@huggingface/hub, installed by
// `scripts/deps.sh --test` from tests/e2e/js/package-lock.json) against
// hubcache: listFiles over many pages, downloadFile, snapshotDownload into a
// cache dir, for a model and a dataset, by branch, tag, commit, a branch
// with a slash and a PR ref, and through a renamed repo's old name; bytes
// checked against the fake Hub's listing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/e2e/hubcache_fixture.h"

namespace hubcache::testing {
namespace {

class JsClientTest : public HubcacheTest {};

TEST_F(JsClientTest, HuggingfaceJsDownloadsEverythingThroughHubcache) {
  const std::string js_dir = std::string(HUBCACHE_SOURCE_DIR) + "/tests/e2e/js";
  ASSERT_TRUE(std::filesystem::exists(js_dir + "/node_modules/@huggingface/hub"))
      << "the huggingface.js client is not installed; run scripts/deps.sh --test";
  StartHubcache();
  const std::string hf_cache = (cache_dir().parent_path() / "hf-cache").string();
  auto run = hubcache::testing::Run({"/usr/bin/env", "node", js_dir + "/e2e.mjs", url(), hub().url(), hf_cache}, {},
                 std::chrono::minutes(5));
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("all checks passed"), std::string::npos) << run.out << run.err;

  // What the client wrote matches the fake Hub byte for byte.
  const std::string commit = Commit("org/model");
  std::ifstream ref(hf_cache + "/models--org--model/refs/main");
  std::string ref_text((std::istreambuf_iterator<char>(ref)), {});
  EXPECT_EQ(ref_text, commit);
  std::ifstream weights(hf_cache + "/models--org--model/snapshots/" + commit + "/model.safetensors",
                        std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(weights)), {});
  EXPECT_EQ(bytes, Content("org/model", "model.safetensors"));
  // The client talked to hubcache only; hubcache fetched each blob once.
  const std::string sha = hub().Etag("model", "org/model", "main", "model.safetensors");
  EXPECT_EQ(hub().BodyBytesSent(sha), bytes.size());
}

// A renamed repo (issue 15): through its old name, huggingface.js used to
// fail with "HubApiError: Api error with status 307" (hubcache passed the
// Hub's redirect on without its Location). Now fetch() follows it to the new
// name, on hubcache.
TEST_F(JsClientTest, HuggingfaceJsDownloadsThroughARenamedReposOldName) {
  const std::string js_dir = std::string(HUBCACHE_SOURCE_DIR) + "/tests/e2e/js";
  ASSERT_TRUE(std::filesystem::exists(js_dir + "/node_modules/@huggingface/hub"))
      << "the huggingface.js client is not installed; run scripts/deps.sh --test";
  StartHubcache();
  const std::string hf_cache = (cache_dir().parent_path() / "hf-cache").string();
  auto run = hubcache::testing::Run(
      {"/usr/bin/env", "node", js_dir + "/renamed.mjs", url(), hub().url(), hf_cache}, {},
      std::chrono::minutes(5));
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("all checks passed"), std::string::npos) << run.out << run.err;
  // The client wrote the snapshot under the name it asked for.
  const std::string commit = Commit("org/model");
  std::ifstream config(hf_cache + "/models--org--old-model/snapshots/" + commit + "/config.json",
                       std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(config)), {});
  EXPECT_EQ(bytes, Content("org/model", "config.json"));
  // hubcache fetched each blob from the Hub once, whatever name asked for it.
  const std::string sha = hub().Etag("model", "org/model", "main", "model.safetensors");
  EXPECT_EQ(hub().BodyBytesSent(sha),
            hub().FileSize("model", "org/model", "main", "model.safetensors"));
}

}  // namespace
}  // namespace hubcache::testing
