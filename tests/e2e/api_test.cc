// The API routes end to end: forwarding, shaping, caching at commits.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/e2e/hubcache_fixture.h"

namespace hubcache::testing {
namespace {

using nlohmann::json;

class ApiTest : public HubcacheTest {
 protected:
  void SetUp() override {
    HubcacheTest::SetUp();
    StartHubcache();
  }
  // Hub clients send their own Host; pagination links must come back to it.
  Headers WithHost(Headers headers = {}) {
    headers.emplace_back("Host", "127.0.0.1:" + std::to_string(port()));
    return headers;
  }
  // The target of a `Link: <URL>; rel="next"` header, checked to point at hubcache.
  std::string NextTarget(const HttpResponse& r) {
    const std::string link = r.Header("link");
    if (link.empty()) return "";
    const std::string base = "<" + url();
    EXPECT_TRUE(link.starts_with(base)) << link;
    EXPECT_NE(link.find(">; rel=\"next\""), std::string::npos) << link;
    return link.substr(base.size(), link.find('>') - base.size());
  }
};

TEST_F(ApiTest, TreeListingFollowsEveryPageThroughHubcacheWithoutXetHash) {
  const std::string commit = Commit("org/data", "main", "dataset");
  std::string target = "/api/datasets/org/data/tree/" + commit + "?recursive=true&expand=false";
  std::set<std::string> paths;
  int pages = 0;
  while (!target.empty()) {
    auto r = Get(target, WithHost());
    ASSERT_EQ(r.status, 200) << target << " " << r.body;
    EXPECT_EQ(r.body.find("xetHash"), std::string::npos);
    for (const auto& entry : json::parse(r.body)) {
      EXPECT_TRUE(entry.contains("oid"));
      EXPECT_TRUE(paths.insert(entry["path"].get<std::string>()).second) << entry["path"];
    }
    const std::string next = NextTarget(r);
    if (!next.empty()) {
      EXPECT_NE(next.find("recursive=true"), std::string::npos) << next;
      EXPECT_NE(next.find("expand=false"), std::string::npos) << next;
      EXPECT_NE(next.find("cursor="), std::string::npos) << next;
    }
    target = next;
    ++pages;
  }
  EXPECT_GE(pages, 2);
  EXPECT_GT(paths.size(), 1200u);
  EXPECT_TRUE(paths.count("data/part-00000.txt"));
  EXPECT_TRUE(paths.count("data/part-01199.txt"));
}

TEST_F(ApiTest, PaginationLinksUseTheConfiguredPublicUrl) {
  StartHubcache({"--set", "server.public_url=http://cache.example:9000/hf"});
  const std::string commit = Commit("org/data", "main", "dataset");
  auto r = Get("/api/datasets/org/data/tree/" + commit + "?recursive=true", WithHost());
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.Header("link").starts_with("<http://cache.example:9000/hf/api/datasets/org/data/tree/"))
      << r.Header("link");
}

TEST_F(ApiTest, TreeAtACommitIsServedFromTheCacheOnceTheRepoIsKnownPublic) {
  const std::string commit = Commit("org/model");
  ASSERT_EQ(Head("/org/model/resolve/" + commit + "/config.json").status, 200);
  const std::string target = "/api/models/org/model/tree/" + commit + "?recursive=true&expand=false";
  auto first = Get(target, WithHost());
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.Header("x-cache"), "MISS");
  hub().ClearLog();
  auto second = Get(target, WithHost());
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.Header("x-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(second.Header("content-type"), first.Header("content-type"));
  EXPECT_EQ(hub().RequestCount(), 0u);
}

TEST_F(ApiTest, XetHashIsTheOnlyThingRemovedFromTreeJson) {
  const std::string commit = Commit("org/model");
  auto r = Get("/api/models/org/model/tree/" + commit, WithHost());
  ASSERT_EQ(r.status, 200);
  auto entries = json::parse(r.body);
  bool saw_lfs = false;
  for (const auto& e : entries) {
    EXPECT_FALSE(e.contains("xetHash"));
    if (e["path"] == "model.safetensors") {
      saw_lfs = true;
      EXPECT_EQ(e["lfs"]["oid"], hub().Etag("model", "org/model", commit, "model.safetensors"));
      EXPECT_EQ(e["size"], hub().FileSize("model", "org/model", commit, "model.safetensors"));
    }
  }
  EXPECT_TRUE(saw_lfs);
}

TEST_F(ApiTest, PathsInfoAcceptsFormAndJsonBodies) {
  const std::string commit = Commit("org/model");
  const std::string target = "/api/models/org/model/paths-info/" + commit;
  auto form = Request("POST", target,
                      {{"Content-Type", "application/x-www-form-urlencoded"}},
                      "paths=config.json&paths=nope.bin&expand=false");
  ASSERT_EQ(form.status, 200) << form.body;
  auto form_json = json::parse(form.body);
  ASSERT_EQ(form_json.size(), 1u);
  EXPECT_EQ(form_json[0]["path"], "config.json");

  auto js = Request("POST", target, {{"Content-Type", "application/json"}},
                    R"({"paths":["model.safetensors"],"expand":true})");
  ASSERT_EQ(js.status, 200) << js.body;
  auto js_json = json::parse(js.body);
  ASSERT_EQ(js_json.size(), 1u);
  EXPECT_FALSE(js_json[0].contains("xetHash"));
  EXPECT_TRUE(js_json[0].contains("lfs"));
}

TEST_F(ApiTest, RepoInfoRefsAndWhoamiAreForwardedWithTheClientsToken) {
  auto info = Get("/api/models/org/model/revision/main");
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(json::parse(info.body)["sha"], Commit("org/model"));
  auto refs = Get("/api/models/org/model/refs");
  ASSERT_EQ(refs.status, 200);
  EXPECT_TRUE(json::parse(refs.body).contains("branches"));

  hub().ClearLog();
  auto who = Get("/api/whoami-v2", {{"Authorization", "Bearer hf_user"}});
  ASSERT_EQ(who.status, 200) << who.body;
  auto me = json::parse(who.body);
  EXPECT_TRUE(me.contains("name"));
  EXPECT_TRUE(me.contains("auth"));
  const auto log = hub().Log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_TRUE(log[0].had_authorization);

  auto anonymous = Get("/api/whoami-v2");
  EXPECT_EQ(anonymous.status, 401);
}

TEST_F(ApiTest, GatedRepoInfoCachedAtACommitIsNotServedToAnotherToken) {
  const std::string commit = Commit("org/gated");
  const std::string target = "/api/models/org/gated/revision/" + commit;
  ASSERT_EQ(Get("/org/gated/resolve/" + commit + "/config.json",
                {{"Authorization", "Bearer hf_approved"}}).status, 200);
  ASSERT_EQ(Get(target, {{"Authorization", "Bearer hf_approved"}}).status, 200);
  hub().ClearLog();
  // Another token: the Hub is asked again (it decides), never the cache.
  auto other = Get(target, {{"Authorization", "Bearer hf_user"}});
  EXPECT_EQ(other.Header("x-cache"), "MISS");
  EXPECT_EQ(hub().RequestCount("/api/models/org/gated/revision/"), 1u);
}

TEST_F(ApiTest, UnknownReadsPassThroughAndRedirectsAreFollowedInside) {
  // /raw/ is not cached: streamed through, the Hub's answer relayed.
  auto raw = Get("/org/model/raw/main/config.json");
  EXPECT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, Content("org/model", "config.json"));
  EXPECT_EQ(raw.Header("x-cache"), "MISS");
  auto missing = Get("/api/models/org/model/nonexistent-route");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Header("location"), "");
}

TEST_F(ApiTest, MetricsCountRequestsBytesAndTheStore) {
  // One keep-alive connection: a request is counted once its answer is sent,
  // before the connection reads the next one, so /metrics sees both.
  auto conn = Connect();
  ASSERT_TRUE(conn);
  for (int i = 0; i < 2; ++i) {
    auto r = conn->Request("GET", "/org/model/resolve/main/config.json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
  }
  // The download's commit (fsync, rename, index) runs behind the client's
  // last byte: the store counts the blob once it is done.
  auto metrics = conn->Request("GET", "/metrics");
  for (int i = 0; i < 500 && metrics &&
                  metrics->body.find("hubcache_fetches_in_flight 0") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    metrics = conn->Request("GET", "/metrics");
  }
  ASSERT_TRUE(metrics);
  const auto& m = *metrics;
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("hubcache_requests_total{route=\"resolve\",status=\"200\"} 2"),
            std::string::npos)
      << m.body;
  const std::string size = std::to_string(Content("org/model", "config.json").size());
  EXPECT_NE(m.body.find("hubcache_served_bytes_total{cache=\"HIT\"} " + size), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_served_bytes_total{cache=\"MISS\"} " + size), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_store_blobs 1"), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_upstream_bytes_total " + size), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_source_fetches_total{source=\"hub\",result=\"ok\"} 1"),
            std::string::npos) << m.body;
  EXPECT_NE(m.body.find("hubcache_source_bytes_total{source=\"hub\"} " + size), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_served_bytes_total{cache=\"PEER\"} 0"), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_store_touch_failures_total 0"), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_fetches_in_flight 0"), std::string::npos);
  EXPECT_NE(m.body.find("hubcache_grant_checks_total{result=\"allowed\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace hubcache::testing
