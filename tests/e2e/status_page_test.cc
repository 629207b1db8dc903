// The status page's JSON and files (issue 19; daemon/status_page.h): off
// unless enabled, on a listener of its own, what it says of the cache, the
// downloads and the repos, and what it hides without the admin token.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <future>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/stream_client.h"

namespace hubcache::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kAdmin = "an-admin-token-of-this-test-0123456789";

class StatusPageTest : public HubcacheTest {
 protected:
  // Starts hubcache with the page on the client listeners and an admin token.
  void StartWithPage(std::vector<std::string> extra = {}) {
    const std::filesystem::path token_file = cache_dir().parent_path() / "admin-token";
    std::ofstream(token_file) << kAdmin << "\n";
    extra.insert(extra.end(), {"--set", "status.enabled=true", "--set",
                               "status.admin_token_file=" + token_file.string()});
    StartHubcache(extra);
  }

  Json Api(const std::string& what, const Headers& headers = {}) {
    auto r = Get("/_hubcache/api/" + what, headers);
    EXPECT_EQ(r.status, 200) << what << ": " << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/json");
    Json body = Json::parse(r.body, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << r.body;
    return body;
  }

  static Headers Admin() { return {{"Authorization", "Bearer " + kAdmin}}; }

  static const Json* FindRepo(const Json& repos, const std::string& label) {
    for (const Json& r : repos["repos"]) {
      if (r["repo"] == label) return &r;
    }
    return nullptr;
  }
};

TEST_F(StatusPageTest, IsOffUnlessEnabledAndNeverReachesTheHub) {
  StartHubcache();
  for (const char* path : {"/_hubcache", "/_hubcache/", "/_hubcache/api/overview",
                           "/_hubcache/status.js"}) {
    auto r = Get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_NE(r.body.find("status.enabled"), std::string::npos) << r.body;
  }
  EXPECT_EQ(hub().RequestCount("_hubcache"), 0u);
}

TEST_F(StatusPageTest, ServesItsOwnFilesWithAStrictContentSecurityPolicy) {
  StartWithPage();
  auto moved = Get("/_hubcache");
  EXPECT_EQ(moved.status, 302);
  EXPECT_EQ(moved.Header("location"), "/_hubcache/");
  auto page = Get("/_hubcache/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.Header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"status.js\""), std::string::npos);
  const std::string csp = page.Header("content-security-policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(page.Header("x-content-type-options"), "nosniff");
  // Nothing on the page comes from elsewhere.
  for (const std::string file : {"/_hubcache/", "/_hubcache/status.css", "/_hubcache/status.js"}) {
    std::string body = Get(file).body;
    // (SVG's namespace name is a name, not a place anything comes from.)
    for (std::size_t at; (at = body.find("http://www.w3.org/2000/svg")) != std::string::npos;) {
      body.erase(at, 26);
    }
    EXPECT_EQ(body.find("http://"), std::string::npos) << file;
    EXPECT_EQ(body.find("https://"), std::string::npos) << file;
  }
  EXPECT_EQ(Get("/_hubcache/status.css").Header("content-type"), "text/css; charset=utf-8");
  EXPECT_EQ(Get("/_hubcache/status.js").Header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(Get("/_hubcache/nothing.js").status, 404);
  EXPECT_EQ(Get("/_hubcache/api/nothing").status, 404);
  EXPECT_EQ(Request("POST", "/_hubcache/api/overview").status, 405);
  EXPECT_EQ(Request("DELETE", "/_hubcache/api/repos").status, 405);
}

TEST_F(StatusPageTest, OverviewAndReposDescribeWhatTheCacheHolds) {
  StartWithPage({"--set", "store.max_bytes=1GiB"});
  ASSERT_EQ(Get("/org/model/resolve/main/config.json").status, 200);
  ASSERT_EQ(Get("/org/model/resolve/main/config.json").status, 200);  // a hit
  ASSERT_EQ(Get("/org/model/resolve/main/model.safetensors").status, 200);
  ASSERT_EQ(Get("/org/gated/resolve/main/config.json", Admin()).status, 401);  // not a Hub token
  ASSERT_EQ(Get("/org/gated/resolve/main/config.json",
                {{"Authorization", "Bearer hf_approved"}}).status,
            200);

  // A HEAD waits for a verified download's commit: all three are stored now.
  EXPECT_EQ(Head("/org/model/resolve/main/model.safetensors").Header("x-cache"), "HIT");
  EXPECT_EQ(Head("/org/gated/resolve/main/config.json", {{"Authorization", "Bearer hf_approved"}})
                .Header("x-cache"),
            "HIT");
  const Json overview = Api("overview");
  EXPECT_FALSE(overview["version"].get<std::string>().empty());
  EXPECT_GE(overview["uptime_seconds"].get<int>(), 0);
  EXPECT_EQ(overview["upstream"]["url"], hub().url());
  EXPECT_EQ(overview["upstream"]["reachable"], true);
  EXPECT_EQ(overview["store"]["max_bytes"], 1ull << 30);
  // Content-addressed: equal files are one blob.
  const std::set<std::string> blobs = {Content("org/model", "config.json"),
                                       Content("org/model", "model.safetensors"),
                                       Content("org/gated", "config.json")};
  std::uint64_t blob_bytes = 0;
  for (const std::string& b : blobs) blob_bytes += b.size();
  EXPECT_EQ(overview["store"]["blobs"], blobs.size());
  EXPECT_EQ(overview["store"]["used_bytes"], blob_bytes);
  EXPECT_GE(overview["answers"]["HIT"].get<int>(), 1);
  EXPECT_GE(overview["answers"]["MISS"].get<int>(), 3);
  EXPECT_GE(overview["upstream_bytes"].get<std::uint64_t>(),
            Content("org/model", "model.safetensors").size());
  EXPECT_TRUE(overview["history"].is_array());
  EXPECT_EQ(overview["cluster"], false);

  // Without the admin token: the public repo, and a count of the others.
  const Json repos = Api("repos");
  const Json* model = FindRepo(repos, "org/model");
  ASSERT_NE(model, nullptr) << repos.dump();
  EXPECT_EQ((*model)["public"], true);
  EXPECT_EQ((*model)["refs"]["main"], Commit("org/model"));
  EXPECT_EQ((*model)["cached_files"], 2);
  EXPECT_EQ(FindRepo(repos, "org/gated"), nullptr);
  EXPECT_EQ(repos["restricted_hidden"], 1);
  EXPECT_EQ(repos.dump().find("gated"), std::string::npos);
  // A restricted repo's files are refused as if it were not there.
  auto refused = Get("/_hubcache/api/repo?repo=org%2Fgated&rev=main");
  EXPECT_EQ(refused.status, 404);
  EXPECT_EQ(Get("/_hubcache/api/repo?repo=org%2Fnothing&rev=main").status, 404);
  EXPECT_EQ(Get("/_hubcache/api/repo?repo=..%2F..&rev=main").status, 400);

  const Json files = Api("repo?repo=org%2Fmodel&rev=main");
  EXPECT_EQ(files["commit"], Commit("org/model"));
  bool config_cached = false;
  for (const Json& f : files["files"]) {
    if (f["path"] == "config.json") config_cached = f["cached"].get<bool>();
  }
  EXPECT_TRUE(config_cached) << files.dump();

  // With it: everything, restricted repos included; a wrong one is a 401.
  const Json all = Api("repos", Admin());
  ASSERT_NE(FindRepo(all, "org/gated"), nullptr) << all.dump();
  EXPECT_EQ((*FindRepo(all, "org/gated"))["public"], false);
  EXPECT_EQ(all["restricted_hidden"], 0);
  EXPECT_EQ(Api("repo?repo=org%2Fgated&rev=main", Admin())["commit"], Commit("org/gated"));
  auto wrong = Get("/_hubcache/api/repos", {{"Authorization", "Bearer hf_approved"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body.find("gated"), std::string::npos);
  // No Hub token appears in what the page serves.
  for (const std::string what : {"overview", "repos", "downloads", "cluster"}) {
    EXPECT_EQ(Get("/_hubcache/api/" + what, Admin()).body.find("hf_"), std::string::npos) << what;
  }
}

TEST_F(StatusPageTest, ADownloadInProgressShowsItsProgressAndReaders) {
  StartWithPage();
  hub().SetBandwidth(0, 20'000'000);
  auto client = std::async(std::launch::async, [&] {
    return StreamGet(port(), "/org/big/resolve/main/model.safetensors");
  });
  Json seen;
  std::uint64_t first = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const Json d = Api("downloads");
    if (!d["downloads"].empty() && d["downloads"][0]["bytes"].get<std::uint64_t>() > 0) {
      if (first == 0) {
        first = d["downloads"][0]["bytes"];
      } else if (d["downloads"][0]["bytes"].get<std::uint64_t>() > first) {
        seen = d["downloads"][0];
        break;
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_FALSE(seen.is_null()) << "no download moving on the status page";
  EXPECT_EQ(seen["repo"], "org/big");
  EXPECT_EQ(seen["path"], "model.safetensors");
  EXPECT_EQ(seen["size"], 268'435'456);
  EXPECT_EQ(seen["source"], "hub");
  EXPECT_EQ(seen["readers"], 1);
  EXPECT_GT(seen["rate"].get<double>(), 0);
  EXPECT_EQ(Api("overview")["downloads"], 1);
  hub().SetBandwidth(0, 0);
  EXPECT_TRUE(client.get().complete);
  // Gone once committed (the fsync of 256 MiB may follow the last byte).
  const auto gone = std::chrono::steady_clock::now() + seconds(30);
  while (!Api("downloads")["downloads"].empty() && std::chrono::steady_clock::now() < gone) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(Api("downloads")["downloads"].empty());
}

TEST_F(StatusPageTest, ARestrictedDownloadIsACountWithoutTheAdminToken) {
  StartWithPage();
  hub().SetBandwidth(0, 2'000'000);
  auto client = std::async(std::launch::async, [&] {
    return StreamGet(port(), "/org/gated/resolve/main/model.safetensors",
                     {{"Authorization", "Bearer hf_approved"}});
  });
  Json hidden, shown;
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (std::chrono::steady_clock::now() < deadline && shown.is_null()) {
    const Json anonymous = Api("downloads");
    const Json admin = Api("downloads", Admin());
    if (!admin["downloads"].empty()) {
      hidden = anonymous;
      shown = admin;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_FALSE(shown.is_null());
  EXPECT_TRUE(hidden["downloads"].empty()) << hidden.dump();
  EXPECT_EQ(hidden["restricted_hidden"], 1);
  EXPECT_EQ(hidden.dump().find("gated"), std::string::npos);
  EXPECT_EQ(shown["downloads"][0]["repo"], "org/gated");
  hub().SetBandwidth(0, 0);
  EXPECT_TRUE(client.get().complete);
}

TEST_F(StatusPageTest, ItsOwnListenerKeepsItOffTheClientsPath) {
  StartHubcache({"--set", "status.listen=127.0.0.1:0"});
  const std::string& err = process().err();
  const std::string needle = "status=http://127.0.0.1:";
  const std::size_t at = err.find(needle);
  ASSERT_NE(at, std::string::npos) << err;
  const auto status_port = static_cast<std::uint16_t>(std::atoi(err.c_str() + at + needle.size()));
  ASSERT_NE(status_port, 0);
  auto page = HttpRequest("127.0.0.1", status_port, "GET", "/_hubcache/", {}, "");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto overview = HttpRequest("127.0.0.1", status_port, "GET", "/_hubcache/api/overview", {}, "");
  ASSERT_TRUE(overview);
  EXPECT_EQ(overview->status, 200);
  // Not on the clients' listener, and the status listener serves nothing of the Hub's.
  EXPECT_EQ(Get("/_hubcache/").status, 404);
  auto hub_route =
      HttpRequest("127.0.0.1", status_port, "GET", "/org/model/resolve/main/config.json", {}, "");
  ASSERT_TRUE(hub_route);
  EXPECT_EQ(hub_route->status, 404);
}

TEST_F(StatusPageTest, AnUnusableAdminTokenFileStopsTheStartWithAClearMessage) {
  const std::filesystem::path short_token = cache_dir().parent_path() / "short";
  std::ofstream(short_token) << "short\n";
  for (const std::string& file : {short_token.string(), std::string("/nonexistent/token")}) {
    auto run = Subprocess::Start({HUBCACHE_BINARY, "serve", "--listen", "127.0.0.1:0",
                                  "--cache-dir", cache_dir().string(), "--upstream", hub().url(),
                                  "--set", "status.enabled=true", "--set",
                                  "status.admin_token_file=" + file});
    EXPECT_NE(run->Wait(seconds(30)), 0);
    EXPECT_NE(run->err().find("status.admin_token_file " + file), std::string::npos) << run->err();
  }
}

// The page itself in headless Chromium (tests/e2e/js/status_page.mjs): no
// console error, a throttled download moving, the cached repos, a hostile
// file name as text, restricted repos only with the admin token.
TEST_F(StatusPageTest, TheBrowserShowsItAllAndEscapesHostileNames) {
  const std::string js_dir = std::string(HUBCACHE_SOURCE_DIR) + "/tests/e2e/js";
  ASSERT_TRUE(std::filesystem::exists(js_dir + "/node_modules/puppeteer-core"))
      << "run scripts/deps.sh --test (make test does)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "run scripts/deps.sh (make test does)";
  StartWithPage();
  ASSERT_EQ(Get("/org/model/resolve/main/config.json").status, 200);
  ASSERT_EQ(Get("/org/gated/resolve/main/config.json", {{"Authorization", "Bearer hf_approved"}})
                .status,
            200);
  ASSERT_EQ(Get("/org/hostile/resolve/main/%3Cscript%3Ealert(1)%3C%2Fscript%3E").status, 200);
  ASSERT_EQ(Get("/org/hostile/resolve/main/%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E.txt").status, 200);
  // A download that lasts while the browser looks: 256 MiB at 8 MB/s.
  hub().SetBandwidth(0, 8'000'000);
  auto client = std::async(std::launch::async, [&] {
    return StreamGet(port(), "/org/big/resolve/main/model.safetensors", {}, seconds(120));
  });
  const std::string screenshot = (cache_dir().parent_path() / "status-page.png").string();
  auto run = testing::Run(
      {"/usr/bin/env", "node", js_dir + "/status_page.mjs", url(), kAdmin, screenshot}, {},
      std::chrono::minutes(3));
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(std::filesystem::exists(screenshot));
  if (const char* keep = std::getenv("STATUS_SCREENSHOT"); keep != nullptr) {
    std::filesystem::copy_file(screenshot, keep, std::filesystem::copy_options::overwrite_existing);
  }
  hub().SetBandwidth(0, 0);
  EXPECT_TRUE(client.get().complete);
}

}  // namespace
}  // namespace hubcache::testing
