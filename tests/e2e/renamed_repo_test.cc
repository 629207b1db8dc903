// A renamed repo end to end (issue 15): the Hub answers a request for the
// old name with a 307 and a relative Location to the new name, on resolve and
// API routes alike. hubcache passes that redirect on, with its Location,
// and caches nothing under the old name; clients follow it and get the
// repo's files through hubcache under the new name.
//
// huggingface_hub (not installed here) is emulated where it matters: its
// metadata HEAD does not follow redirects automatically but follows relative
// ones itself, replacing the URL's path with the Location's path
// (utils/_http.py, HUB_PROTOCOL.md §2.4), then GETs the URL it reached.
// huggingface.js follows redirects with fetch(): js_client_test.cc.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/index.h"
#include "tests/e2e/hubcache_fixture.h"

namespace hubcache::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kModel = "org/model";
constexpr const char* kOldName = "org/old-model";

class RenamedRepoTest : public HubcacheTest {
 protected:
  void SetUp() override {
    HubcacheTest::SetUp();
    StartHubcache();
  }

  // huggingface_hub's hf_hub_download of `path` in `repo` at main through
  // hubcache: HEAD without automatic redirects, relative Locations followed
  // by swapping in their path (query dropped), then a GET of the last URL.
  // Returns the final HEAD and the GET; fails the test on a loop.
  std::pair<HttpResponse, HttpResponse> PythonDownload(const std::string& repo,
                                                       const std::string& path) {
    std::string target = "/" + repo + "/resolve/main/" + path;
    const Headers identity = {{"Accept-Encoding", "identity"}};
    HttpResponse head = Head(target, identity);
    for (int hops = 0; head.status >= 300 && head.status < 400; ++hops) {
      const std::string location = head.Header("location");
      if (hops == 10 || location.empty() || !location.starts_with("/")) {
        ADD_FAILURE() << "HEAD " << target << ": " << head.status << " Location '" << location
                      << "' (KeyError: 'location' in huggingface_hub)";
        return {head, {}};
      }
      target = location.substr(0, location.find('?'));
      head = Head(target, identity);
    }
    return {head, Get(target)};
  }
};

TEST_F(RenamedRepoTest, ResolveHeadAndGetPassTheRedirectOnWithItsLocation) {
  for (const std::string file : {"config.json", "model.safetensors", "dir/%C3%A9%20x%2By.txt"}) {
    for (const std::string method : {"HEAD", "GET"}) {
      SCOPED_TRACE(method + " " + file);
      const std::string old_target = std::string("/") + kOldName + "/resolve/main/" + file;
      auto r = Request(method, old_target, {{"Range", "bytes=0-0"}});
      EXPECT_EQ(r.status, 307);
      EXPECT_EQ(r.Header("location"), std::string("/") + kModel + "/resolve/main/" + file);
      EXPECT_EQ(r.Header("x-cache"), "MISS");
      EXPECT_EQ(r.Header("x-repo-commit"), "") << "nothing was resolved under the old name";
      EXPECT_EQ(r.Header("content-range"), "");
    }
  }
  // Any revision keeps its place.
  const std::string commit = Commit(kModel, "v1.0");
  auto pinned = Head(std::string("/") + kOldName + "/resolve/" + commit + "/README.md");
  EXPECT_EQ(pinned.status, 307);
  EXPECT_EQ(pinned.Header("location"),
            std::string("/") + kModel + "/resolve/" + commit + "/README.md");
}

TEST_F(RenamedRepoTest, ApiRoutesPassTheRedirectOnWithItsLocation) {
  const std::pair<std::string, std::string> moves[] = {
      {"/api/models/org/old-model", "/api/models/org/model"},
      {"/api/models/org/old-model/revision/main?expand=sha&expand=private",
       "/api/models/org/model/revision/main?expand=sha&expand=private"},
      {"/api/models/org/old-model/tree/main?recursive=true&expand=false",
       "/api/models/org/model/tree/main?recursive=true&expand=false"},
      {"/api/models/org/old-model/refs", "/api/models/org/model/refs"},
      // hubcache answers resolve-cache URLs from the resolve route at the
      // commit, so that is where the new name is.
      {"/api/resolve-cache/models/org/old-model/" + Commit(kModel) + "/config.json",
       "/org/model/resolve/" + Commit(kModel) + "/config.json"},
  };
  for (const auto& [old_target, new_target] : moves) {
    auto r = Get(old_target);
    EXPECT_EQ(r.status, 307) << old_target << " " << r.body;
    EXPECT_EQ(r.Header("location"), new_target) << old_target;
    // Followed, the new name answers as the Hub would.
    auto followed = Get(r.Header("location"));
    EXPECT_EQ(followed.status, 200) << new_target << " " << followed.body;
  }
  auto paths = Request("POST", "/api/models/org/old-model/paths-info/main",
                       {{"Content-Type", "application/json"}}, R"({"paths":["config.json"]})");
  EXPECT_EQ(paths.status, 307) << paths.body;
  EXPECT_EQ(paths.Header("location"), "/api/models/org/model/paths-info/main");
  const Json info = Json::parse(Get("/api/models/org/model/revision/main").body);
  EXPECT_EQ(info["id"], kModel);
}

TEST_F(RenamedRepoTest, HuggingfaceHubDownloadsThroughTheOldName) {
  for (const std::string file : {"config.json", "model.safetensors"}) {
    SCOPED_TRACE(file);
    auto [head, get] = PythonDownload(kOldName, file);
    ASSERT_EQ(head.status, 200);
    // What hf_hub_download reads from the HEAD it ended on.
    EXPECT_EQ(head.Header("x-repo-commit"), Commit(kModel));
    const std::string etag = hub().Etag("model", kModel, "main", file);
    EXPECT_EQ(head.Header(file == "config.json" ? "etag" : "x-linked-etag"), "\"" + etag + "\"");
    const std::string content = Content(kModel, file);
    EXPECT_EQ(head.Header("content-length"), std::to_string(content.size()));
    ASSERT_EQ(get.status, 200);
    EXPECT_TRUE(get.body == content) << "bytes differ";
  }
}

TEST_F(RenamedRepoTest, UnderAPathPrefixTheLocationKeepsThePrefix) {
  // Behind a reverse proxy at http://gateway/hf, clients must come back
  // through the prefix (huggingface_hub swaps in the Location's whole path).
  StartHubcache({"--set", "server.public_url=http://gateway.example/hf"});
  auto file = Head(std::string("/") + kOldName + "/resolve/main/config.json");
  EXPECT_EQ(file.status, 307);
  EXPECT_EQ(file.Header("location"), std::string("/hf/") + kModel + "/resolve/main/config.json");
  auto api = Get("/api/models/org/old-model/revision/main");
  EXPECT_EQ(api.status, 307);
  EXPECT_EQ(api.Header("location"), "/hf/api/models/org/model/revision/main");
}

TEST_F(RenamedRepoTest, NothingIsCachedUnderTheOldName) {
  // Everything a client does through the old name...
  PythonDownload(kOldName, "config.json");
  PythonDownload(kOldName, "model.safetensors");
  for (const std::string& target : std::vector<std::string>{
           "/api/models/org/old-model/revision/main", "/api/models/org/old-model/refs",
        "/api/models/org/old-model/tree/main?recursive=true&expand=false",
        "/api/models/org/old-model/tree/" + Commit(kModel) + "?recursive=true&expand=false",
        "/api/models/org/old-model/revision/" + Commit(kModel)}) {
    EXPECT_EQ(Get(target).status, 307) << target;
  }
  StopHubcache();

  // ... left no trace of the old name in the index: no ref, file, document
  // or access fact. The new name has them.
  auto index = store::Index::Open(cache_dir() / "index");
  ASSERT_TRUE(index) << index.error().message();
  const store::RepoId old_repo{.type = store::RepoType::kModel, .name = kOldName};
  const store::RepoId new_repo{.type = store::RepoType::kModel, .name = kModel};
  std::set<std::string> repos;
  ASSERT_TRUE((*index)->ForEachFileRecord(
      [&](const store::RepoId& repo, std::string_view, std::string_view, const store::FileRecord&) {
        repos.insert(repo.name);
        return true;
      }));
  ASSERT_TRUE((*index)->ForEachRef([&](const store::RepoId& repo, std::string_view,
                                       const store::RefRecord&) {
    repos.insert(repo.name);
    return true;
  }));
  EXPECT_EQ(repos, std::set<std::string>{kModel});
  auto old_access = (*index)->GetAccess(old_repo);
  ASSERT_TRUE(old_access);
  EXPECT_FALSE(old_access->has_value());
  auto new_access = (*index)->GetAccess(new_repo);
  ASSERT_TRUE(new_access);
  EXPECT_TRUE(new_access->has_value());
  for (const std::string& revision : std::vector<std::string>{"@", "main", Commit(kModel)}) {
    std::size_t docs = 0;
    ASSERT_TRUE(
        (*index)->ForEachDoc(old_repo, revision, [&](std::string_view, const store::DocRecord&) {
          ++docs;
          return true;
        }));
    EXPECT_EQ(docs, 0u) << revision;
  }
  index->reset();

  // Offline, the old name is simply not cached (the client's own cache or
  // the Hub must tell it about the rename), while the new name is served.
  StartHubcache({"--offline"});
  EXPECT_EQ(Head(std::string("/") + kOldName + "/resolve/main/config.json").status, 503);
  EXPECT_EQ(Get("/api/models/org/old-model/revision/main").status, 503);
  auto served = Head(std::string("/") + kModel + "/resolve/main/config.json");
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.Header("x-repo-commit"), Commit(kModel));
}

}  // namespace
}  // namespace hubcache::testing
