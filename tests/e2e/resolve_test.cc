// The resolve routes end to end: the real daemon, the fake Hub, raw HTTP.
// HUB_PROTOCOL.md §8 and the acceptance checks of §9 that need no Python.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e/hubcache_fixture.h"

namespace hubcache::testing {
namespace {

constexpr const char* kModel = "org/model";
const std::string kConfig = "/org/model/resolve/main/config.json";
const std::string kWeights = "/org/model/resolve/main/model.safetensors";

class ResolveTest : public HubcacheTest {
 protected:
  void SetUp() override {
    HubcacheTest::SetUp();
    StartHubcache();
  }
};

// Nothing Xet-related and nothing from the upstream's cache ever reaches a client.
void ExpectNoXet(const HttpResponse& r) {
  for (const auto& [name, value] : r.headers) {
    EXPECT_FALSE(name.starts_with("x-xet-")) << name;
    if (name == "link") {
      EXPECT_EQ(value.find("xet-auth"), std::string::npos) << value;
      EXPECT_EQ(value.find("xet-reconstruction-info"), std::string::npos) << value;
    }
  }
  EXPECT_EQ(r.Header("x-cache").find("cloudfront"), std::string::npos);
}

TEST_F(ResolveTest, HeadOfRegularFileIs200WithTheHeadersClientsRead) {
  auto r = Head(kConfig, {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("x-repo-commit"), Commit(kModel));
  EXPECT_EQ(r.Header("etag"), "\"" + hub().Etag("model", kModel, "main", "config.json") + "\"");
  EXPECT_EQ(r.Header("content-length"), std::to_string(Content(kModel, "config.json").size()));
  EXPECT_EQ(r.Header("accept-ranges"), "bytes");
  EXPECT_EQ(r.Header("content-encoding"), "");
  EXPECT_EQ(r.Header("x-linked-etag"), "");
  EXPECT_EQ(r.Header("x-cache"), "MISS");
  EXPECT_EQ(r.Header("location"), "");
  ExpectNoXet(r);
}

TEST_F(ResolveTest, HeadOfLfsFileCarriesLinkedEtagAndSizeAndNoXetHints) {
  auto r = Head(kWeights);
  EXPECT_EQ(r.status, 200);
  const std::string sha256 = hub().Etag("model", kModel, "main", "model.safetensors");
  const std::string size = std::to_string(hub().FileSize("model", kModel, "main", "model.safetensors"));
  EXPECT_EQ(r.Header("x-repo-commit"), Commit(kModel));
  EXPECT_EQ(r.Header("x-linked-etag"), "\"" + sha256 + "\"");
  EXPECT_EQ(r.Header("etag"), "\"" + sha256 + "\"");
  EXPECT_EQ(r.Header("x-linked-size"), size);
  EXPECT_EQ(r.Header("content-length"), size);
  ExpectNoXet(r);
}

TEST_F(ResolveTest, GetMissStreamsThenHitsWithoutAskingTheHubForBytesAgain) {
  const std::string expected = Content(kModel, "model.safetensors");
  auto miss = Get(kWeights);
  ASSERT_EQ(miss.status, 200);
  EXPECT_EQ(miss.Header("x-cache"), "MISS");
  EXPECT_EQ(miss.body, expected);
  EXPECT_EQ(miss.Header("content-length"), std::to_string(expected.size()));
  ExpectNoXet(miss);
  // The CDN serves LFS bytes under their sha256.
  const std::string sha = hub().Etag("model", kModel, "main", "model.safetensors");
  const std::uint64_t upstream = hub().BodyBytesSent(sha);
  EXPECT_EQ(upstream, expected.size());

  auto hit = Get(kWeights);
  ASSERT_EQ(hit.status, 200);
  EXPECT_EQ(hit.Header("x-cache"), "HIT");
  EXPECT_EQ(hit.body, expected);
  EXPECT_EQ(hub().BodyBytesSent(sha), upstream);
  EXPECT_EQ(Head(kWeights).Header("x-cache"), "HIT");

  // The blob is on disk under its sha256.
  EXPECT_TRUE(std::filesystem::exists(cache_dir() / "blobs" / "sha256" / sha.substr(0, 2) / sha));
}

TEST_F(ResolveTest, CommitRevisionIsAnsweredWithoutAnyUpstreamRequestOnceCached) {
  const std::string target = "/org/model/resolve/" + Commit(kModel) + "/config.json";
  ASSERT_EQ(Get(target).status, 200);
  hub().ClearLog();
  auto head = Head(target);
  auto get = Get(target);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(get.body, Content(kModel, "config.json"));
  EXPECT_EQ(get.Header("x-cache"), "HIT");
  EXPECT_EQ(hub().RequestCount(), 0u);
}

TEST_F(ResolveTest, BranchRevisionWithinRefTtlAsksNothingAndAfterItOneHead) {
  ASSERT_EQ(Get(kConfig).status, 200);
  hub().ClearLog();
  EXPECT_EQ(Head(kConfig).status, 200);
  EXPECT_EQ(hub().RequestCount(), 0u);

  StartHubcache({"--set", "cache.ref_ttl=0s"});
  hub().ClearLog();
  auto r = Head(kConfig);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("x-cache"), "HIT");
  // The metadata HEAD (and the Hub's own resolve-cache hop), no body.
  EXPECT_EQ(hub().RequestCount("/resolve/main/config.json"), 1u);
  EXPECT_EQ(hub().BodyBytesSent(), 0u);
}

TEST_F(ResolveTest, MovedBranchServesTheNewCommitAfterTheRefTtl) {
  StartHubcache({"--set", "cache.ref_ttl=0s"});
  const std::string old_commit = Commit(kModel);
  ASSERT_EQ(Head(kConfig).Header("x-repo-commit"), old_commit);
  const std::string v1 = Commit(kModel, "v1.0");
  ASSERT_NE(v1, old_commit);
  hub().MoveBranch("model", kModel, "main", v1);
  auto r = Get(kConfig);
  hub().MoveBranch("model", kModel, "main", old_commit);
  EXPECT_EQ(r.Header("x-repo-commit"), v1);
  EXPECT_EQ(r.body, hub().FileContent("model", kModel, v1, "config.json"));
}

TEST_F(ResolveTest, ResolveCacheRouteServesTheSameFile) {
  const std::string target = "/api/resolve-cache/models/org/model/" + Commit(kModel) + "/config.json";
  auto head = Head(target);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("x-repo-commit"), Commit(kModel));
  auto get = Get(target);
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, Content(kModel, "config.json"));
  EXPECT_EQ(Get("/api/resolve-cache/models/org/model/main/config.json").status, 400);
}

TEST_F(ResolveTest, RangesAreExactOnMissAndOnHit) {
  const std::string expected = Content(kModel, "model.safetensors");
  const std::uint64_t total = expected.size();
  const std::string all = "/" + std::to_string(total);
  for (const char* phase : {"miss", "hit"}) {
    SCOPED_TRACE(phase);
    auto probe = Get(kWeights, {{"Range", "bytes=0-0"}});
    EXPECT_EQ(probe.status, 206);
    EXPECT_EQ(probe.Header("content-range"), "bytes 0-0" + all);
    EXPECT_EQ(probe.body, expected.substr(0, 1));
    EXPECT_FALSE(probe.Header("etag").empty());
    EXPECT_EQ(probe.Header("content-encoding"), "");

    auto mid = Get(kWeights, {{"Range", "bytes=10-19"}});
    EXPECT_EQ(mid.status, 206);
    EXPECT_EQ(mid.body, expected.substr(10, 10));

    auto tail = Get(kWeights, {{"Range", "bytes=" + std::to_string(total - 5) + "-"}});
    EXPECT_EQ(tail.body, expected.substr(total - 5));
    auto suffix = Get(kWeights, {{"Range", "bytes=-5"}});
    EXPECT_EQ(suffix.status, 206);
    EXPECT_EQ(suffix.body, expected.substr(total - 5));

    // hf_transfer asks one byte past the end: clamped.
    auto past = Get(kWeights, {{"Range", "bytes=100-" + std::to_string(total)}});
    EXPECT_EQ(past.status, 206);
    EXPECT_EQ(past.Header("content-range"),
              "bytes 100-" + std::to_string(total - 1) + all);
    EXPECT_EQ(past.body, expected.substr(100));

    auto beyond = Get(kWeights, {{"Range", "bytes=" + std::to_string(total) + "-"}});
    EXPECT_EQ(beyond.status, 416);
    EXPECT_EQ(beyond.Header("content-range"), "bytes */" + std::to_string(total));
  }
}

TEST_F(ResolveTest, MultipleRangesGetAMultipartByterangesAnswer) {
  const std::string expected = Content(kModel, "config.json");
  ASSERT_GT(expected.size(), 30u);
  auto r = Get(kConfig, {{"Range", "bytes=0-4,10-14"}});
  ASSERT_EQ(r.status, 206);
  const std::string type = r.Header("content-type");
  ASSERT_TRUE(type.starts_with("multipart/byteranges; boundary=")) << type;
  const std::string boundary = type.substr(type.find('=') + 1);
  const std::string total = std::to_string(expected.size());
  const std::string want = "\r\n--" + boundary +
                           "\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-4/" +
                           total + "\r\n\r\n" + expected.substr(0, 5) + "\r\n--" + boundary +
                           "\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 10-14/" +
                           total + "\r\n\r\n" + expected.substr(10, 5) + "\r\n--" + boundary + "--\r\n";
  EXPECT_EQ(r.body, want);
}

TEST_F(ResolveTest, HeadAndGetAgreeOnSizeForEveryFile) {
  for (const std::string& path : std::vector<std::string>{"config.json", "model.safetensors", "dir/%C3%A9%20x%2By.txt"}) {
    SCOPED_TRACE(path);
    auto head = Head("/org/model/resolve/main/" + path);
    auto get = Get("/org/model/resolve/main/" + path, {{"Accept-Encoding", "gzip"}});
    ASSERT_EQ(head.status, 200);
    ASSERT_EQ(get.status, 200);
    EXPECT_EQ(head.Header("content-length"), std::to_string(get.body.size()));
    EXPECT_EQ(get.Header("content-encoding"), "");
  }
}

TEST_F(ResolveTest, EncodedRevisionsAndFileNamesResolve) {
  auto pr = Get("/org/model/resolve/refs%2Fpr%2F1/config.json");
  EXPECT_EQ(pr.status, 200);
  EXPECT_EQ(pr.Header("x-repo-commit"), Commit(kModel, "refs/pr/1"));
  EXPECT_EQ(pr.body, hub().FileContent("model", kModel, "refs/pr/1", "config.json"));
  auto raw_pr = Head("/org/model/resolve/refs/pr/1/config.json");
  EXPECT_EQ(raw_pr.Header("x-repo-commit"), Commit(kModel, "refs/pr/1"));
  auto branch = Head("/org/model/resolve/feat%2Fx/config.json");
  EXPECT_EQ(branch.status, 200);
  EXPECT_EQ(branch.Header("x-repo-commit"), Commit(kModel, "feat/x"));
  // Python encodes everything, JS leaves `+` alone: the same file.
  const std::string want = Content(kModel, "dir/é x+y.txt");
  EXPECT_EQ(Get("/org/model/resolve/main/dir/%C3%A9%20x%2By.txt").body, want);
  EXPECT_EQ(Get("/org/model/resolve/main/dir/%C3%A9%20x+y.txt").body, want);
}

TEST_F(ResolveTest, HubErrorsAreRelayedAsTheHubGaveThem) {
  auto missing = Head("/org/model/resolve/main/nope.bin");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(missing.Header("x-repo-commit"), Commit(kModel));
  auto get = Get("/org/model/resolve/main/nope.bin");
  EXPECT_EQ(get.status, 404);
  EXPECT_EQ(nlohmann::json::parse(get.body).contains("error"), true);

  auto revision = Head("/org/model/resolve/nope/config.json");
  EXPECT_EQ(revision.status, 404);
  EXPECT_EQ(revision.Header("x-error-code"), "RevisionNotFound");

  auto repo = Head("/org/missing/resolve/main/config.json");
  EXPECT_EQ(repo.status, 401);
  EXPECT_EQ(repo.Header("x-error-code"), "RepoNotFound");
}

TEST_F(ResolveTest, EntryNotFoundAtACommitIsCachedAsANegativeEntry) {
  const std::string commit = Commit(kModel);
  ASSERT_EQ(Head("/org/model/resolve/" + commit + "/config.json").status, 200);  // public now
  ASSERT_EQ(Head("/org/model/resolve/" + commit + "/nope.bin").status, 404);
  hub().ClearLog();
  auto again = Head("/org/model/resolve/" + commit + "/nope.bin");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.Header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(again.Header("x-repo-commit"), commit);
  EXPECT_EQ(hub().RequestCount(), 0u);
}

TEST_F(ResolveTest, MalformedPathsAre400WithAJsonError) {
  for (const std::string& target : std::vector<std::string>{
           "/org/model/resolve/main/../secret", "/org/model/resolve/main/a%00b",
        "/org/model/resolve/main/bad%zzescape", "/org/model/resolve/ma..in/config.json",
        "/org/mo$del/resolve/main/config.json", "/org/model/resolve/main/" + std::string(300, 'a')}) {
    SCOPED_TRACE(target);
    auto r = Get(target);
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(nlohmann::json::parse(r.body, nullptr, false).contains("error")) << r.body;
  }
  EXPECT_EQ(hub().RequestCount(), 0u);
}

TEST_F(ResolveTest, WritesAreRefusedWith405) {
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    auto r = Request(method, "/api/models/org/model/commit/main", {}, "{}");
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_TRUE(nlohmann::json::parse(r.body, nullptr, false).contains("error"));
  }
  EXPECT_EQ(Request("POST", kConfig, {}, "x").status, 405);
  EXPECT_EQ(hub().RequestCount(), 0u);
}

}  // namespace
}  // namespace hubcache::testing
