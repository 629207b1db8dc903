// Operations against the fake Hub, with the real binary: prefetch (direct
// and through a running daemon, failures, interruption and resume), ls, pin,
// unpin, gc, rm, air-gap bundles (export, import, tampering, offline serving
// to huggingface.js with the Hub unreachable, every tag on a carried commit),
// and the huggingface_hub cache layout (export read back by huggingface.js,
// import with verification).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/stream_client.h"

namespace hubcache::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using std::chrono::seconds;

const std::string kJsDir = std::string(HUBCACHE_SOURCE_DIR) + "/tests/e2e/js";

class OpsTest : public HubcacheTest {
 protected:
  fs::path dir() const { return cache_dir().parent_path(); }

  // `hubcache args... --cache-dir <cache>` (another cache directory with `cache`).
  RunResult Hubcache(std::vector<std::string> args, const fs::path& cache = {}) {
    args.insert(args.begin(), HUBCACHE_BINARY);
    args.insert(args.end(), {"--cache-dir", (cache.empty() ? cache_dir() : cache).string()});
    return testing::Run(args, {}, std::chrono::minutes(3));
  }
  // Prefetch straight into a cache directory (a private service).
  RunResult Prefetch(std::vector<std::string> args, const fs::path& cache = {}) {
    args.insert(args.begin(), "prefetch");
    args.insert(args.end(), {"--upstream", hub().url(), "--set", "upstream.max_retries=1"});
    return Hubcache(args, cache);
  }
  Json Ls(const fs::path& cache = {}) {
    auto ls = Hubcache({"ls", "--json"}, cache);
    EXPECT_EQ(ls.exit_code, 0) << ls.err;
    return Json::parse(ls.out, nullptr, false);
  }
  // The `ls --json` entry of `repo`, or null.
  Json Repo(const Json& ls, const std::string& repo) {
    if (!ls.contains("repos")) return nullptr;
    for (const auto& r : ls["repos"]) {
      if (r["repo"] == repo) return r;
    }
    return nullptr;
  }
  std::uint64_t CachedBytes(const Json& repo) {
    std::uint64_t n = 0;
    for (const auto& c : repo["commits"]) n += c["cached_bytes"].get<std::uint64_t>();
    return n;
  }
  std::uint64_t Bytes(const Json& repo) {
    std::uint64_t n = 0;
    for (const auto& c : repo["commits"]) n += c["bytes"].get<std::uint64_t>();
    return n;
  }
  static std::string Slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  RunResult Node(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/env", "node", kJsDir + "/offline.mjs"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, {}, std::chrono::minutes(5));
  }
};

TEST_F(OpsTest, PrefetchStoresARevisionAndServesItOffline) {
  auto first = Prefetch({"org/model"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("org/model@main (commit " + Commit("org/model") + "): 7 files"),
            std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("7 fetched, 0 already cached"), std::string::npos) << first.out;
  // Not a terminal: one plain line per file.
  EXPECT_NE(first.err.find("[7/7]"), std::string::npos) << first.err;

  const Json model = Repo(Ls(), "org/model");
  ASSERT_FALSE(model.is_null());
  EXPECT_EQ(model["refs"]["main"], Commit("org/model"));
  ASSERT_EQ(model["commits"].size(), 1u);
  EXPECT_EQ(model["commits"][0]["files"], 7);
  EXPECT_EQ(model["commits"][0]["cached_files"], 7);
  EXPECT_GT(model["last_access"].get<std::int64_t>(), 0);

  // A second run finds everything cached and moves no file bytes.
  hub().ClearLog();
  auto again = Prefetch({"org/model"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("0 fetched, 7 already cached"), std::string::npos) << again.out;
  EXPECT_EQ(hub().BodyBytesSent("model.safetensors"), 0u);

  // Offline with the Hub unreachable: files by branch and the API as clients ask it.
  StartHubcache({"--offline", "--upstream", "http://127.0.0.1:1"});
  auto file = Get("/org/model/resolve/main/model.safetensors");
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, Content("org/model", "model.safetensors"));
  auto info = Get("/api/models/org/model/revision/main?expand=sha&expand=private");
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(Json::parse(info.body)["sha"], Commit("org/model"));
  auto folder = Get("/api/models/org/model/tree/main/sub?recursive=false&expand=false");
  ASSERT_EQ(folder.status, 200) << folder.body;
  EXPECT_EQ(Json::parse(folder.body).size(), 1u);
  auto paths = Request("POST", "/api/models/org/model/paths-info/main",
                       {{"Content-Type", "application/json"}},
                       R"({"paths":["config.json","nope"],"expand":true})");
  ASSERT_EQ(paths.status, 200) << paths.body;
  auto entries = Json::parse(paths.body);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["path"], "config.json");
  // Never asked and not derivable: a clear 503, not a guess.
  EXPECT_EQ(Get("/api/models/org/model/tree/main/no-such-dir").status, 503);
  // A file the revision does not have (transformers probes optional files):
  // the stored tree says so, so the answer is the Hub's 404, not an error.
  for (const std::string method : {"HEAD", "GET"}) {
    auto probe = Request(method, "/org/model/resolve/main/adapter_config.json");
    EXPECT_EQ(probe.status, 404) << method;
    EXPECT_EQ(probe.Header("x-error-code"), "EntryNotFound") << method;
    EXPECT_EQ(probe.Header("x-repo-commit"), Commit("org/model")) << method;
  }
}

TEST_F(OpsTest, PrefetchFiltersAndReportsFailuresThenResumes) {
  hub().AddFault({.path_contains = "model.safetensors", .fail_first = -1, .fail_status = 503});
  auto failed = Prefetch({"org/model", "--exclude", "*.md", "--exclude", "sub/"});
  EXPECT_EQ(failed.exit_code, 1) << failed.out << failed.err;
  EXPECT_NE(failed.out.find("5 files"), std::string::npos) << failed.out;
  EXPECT_NE(failed.out.find("FAILED model.safetensors: HTTP 5"), std::string::npos)
      << failed.out;
  hub().ClearFaults();
  auto resumed = Prefetch({"org/model", "--exclude", "*.md", "--exclude", "sub/"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_NE(resumed.out.find("1 fetched, 4 already cached"), std::string::npos) << resumed.out;

  auto only = Prefetch({"org/model", "--include", "*.json"});
  EXPECT_EQ(only.exit_code, 0) << only.out;
  EXPECT_NE(only.out.find("2 files"), std::string::npos) << only.out;
  // Bad input: a clear message and the usage exit code.
  auto bad = Hubcache({"prefetch", "not a repo"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("is not a repository"), std::string::npos) << bad.err;
  auto missing = Prefetch({"org/nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("org/nope@main: FAILED: repo info: HTTP 401: Repository not found"), std::string::npos)
      << missing.out;
}

TEST_F(OpsTest, PrefetchReportsAFileTheStoreCouldNotKeep) {
  // model.safetensors (5 MB) cannot fit under a 1 MiB store: hubcache serves
  // it straight through, and prefetch must not call that cached.
  auto full = Prefetch({"org/model", "--exclude", "*.md", "--set", "store.max_bytes=1MiB"});
  EXPECT_EQ(full.exit_code, 1) << full.out << full.err;
  EXPECT_NE(full.out.find("FAILED model.safetensors: downloaded but not stored (X-Cache: MISS)"),
            std::string::npos)
      << full.out;
  EXPECT_NE(full.out.find("5 fetched, 0 already cached, 1 FAILED"), std::string::npos) << full.out;
  auto roomy = Prefetch({"org/model", "--exclude", "*.md"});
  EXPECT_EQ(roomy.exit_code, 0) << roomy.out << roomy.err;
  EXPECT_NE(roomy.out.find("1 fetched, 5 already cached"), std::string::npos) << roomy.out;
}

TEST_F(OpsTest, AnInterruptedPrefetchContinuesWhereItStopped) {
  // One file of the revision done before the interruption (deterministically).
  ASSERT_EQ(Prefetch({"org/big", "--include", "config.json"}).exit_code, 0);
  hub().SetBandwidth(0, 40'000'000);  // 256 MiB takes seconds
  std::vector<std::string> argv = {HUBCACHE_BINARY, "prefetch", "org/big", "--cache-dir",
                                   cache_dir().string(), "--upstream", hub().url()};
  auto child = Subprocess::Start(argv);
  const std::string sha = hub().Etag("model", "org/big", "main", "model.safetensors");
  for (int i = 0; i < 200 && hub().BodyBytesSent(sha) < 20'000'000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(hub().BodyBytesSent(sha), 0u) << child->err();
  child->Signal(SIGKILL);
  child->Wait(seconds(10));
  hub().SetBandwidth(0, 0);

  auto resumed = Prefetch({"org/big"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_NE(resumed.out.find("1 fetched, 1 already cached"), std::string::npos) << resumed.out;
  const Json big = Repo(Ls(), "org/big");
  ASSERT_FALSE(big.is_null());
  EXPECT_EQ(CachedBytes(big), Bytes(big));
  StartHubcache({"--offline"});
  // 256 MiB: streamed and hashed, with a deadline a loaded machine meets.
  auto file = StreamGet(port(), "/org/big/resolve/main/model.safetensors");
  EXPECT_EQ(file.status, 200);
  EXPECT_TRUE(file.complete);
  EXPECT_EQ(file.sha256, sha) << "bytes differ";
}

TEST_F(OpsTest, PrefetchDrawsProgressOnATerminal) {
  hub().SetBandwidth(0, 100'000'000);  // long enough for a few redraws
  // script(1) gives the command a pseudo-terminal.
  const std::string command = std::string(HUBCACHE_BINARY) + " prefetch org/big --cache-dir " +
                              cache_dir().string() + " --upstream " + hub().url();
  auto run = testing::Run({"/usr/bin/script", "-qfec", command, "/dev/null"}, {}, std::chrono::minutes(2));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  // A line for the file in flight, the total bar with rate and ETA, redrawn in place.
  EXPECT_NE(run.out.find("model.safetensors"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("/ 256.0 MiB"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("] "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("ETA"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("MiB/s"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("\x1b["), std::string::npos) << "redrawn in place";
  EXPECT_NE(run.out.find("prefetch org/big@main ("), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("2/2 files"), std::string::npos) << run.out;
}

TEST_F(OpsTest, PrefetchTakesAListOfRepos) {
  const fs::path list = dir() / "repos.txt";
  std::ofstream(list) << "# what the cluster needs\n"
                         "org/model@v1.0\n"
                         "\n"
                         "  datasets/org/data   # the eval set\n";
  auto run = Hubcache({"prefetch", "--from-file", list.string(), "--upstream", hub().url()});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const Json ls = Ls();
  EXPECT_EQ(Repo(ls, "org/model")["refs"]["v1.0"], Commit("org/model", "v1.0"));
  EXPECT_FALSE(Repo(ls, "datasets/org/data").is_null());
  std::ofstream(list) << "org/model\nnot/a/repo\n";
  auto bad = Hubcache({"prefetch", "--from-file", list.string()});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("line 2"), std::string::npos) << bad.err;
}

TEST_F(OpsTest, AnInterruptedImportResumes) {
  ASSERT_EQ(Prefetch({"org/big"}).exit_code, 0);
  ASSERT_EQ(Prefetch({"org/model"}).exit_code, 0);
  const fs::path bundle = dir() / "bundle";
  ASSERT_EQ(Hubcache({"export", "org/big", "org/model", "--out", bundle.string()}).exit_code, 0);
  const fs::path site = dir() / "site";
  auto child = Subprocess::Start(
      {HUBCACHE_BINARY, "import", bundle.string(), "--cache-dir", site.string()});
  // Kill it while the 256 MiB blob is half written.
  bool caught = false;
  for (int i = 0; i < 3000 && !caught && child->Running(); ++i) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(site / "staging", ec)) {
      caught = caught || (e.is_regular_file() && e.file_size() > 32'000'000);
    }
    if (!caught) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(caught) << "the import finished before it could be interrupted";
  child->Signal(SIGKILL);
  child->Wait(seconds(10));
  EXPECT_TRUE(Repo(Ls(site), "org/big").is_null()) << "nothing indexed before its blobs are in";

  auto resumed = Hubcache({"import", bundle.string()}, site);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  const Json big = Repo(Ls(site), "org/big");
  ASSERT_FALSE(big.is_null());
  EXPECT_EQ(CachedBytes(big), Bytes(big));
  auto verify = Hubcache({"verify"}, site);
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(OpsTest, PrefetchGoesThroughARunningDaemon) {
  StartHubcache();
  auto direct = Prefetch({"org/model"});
  EXPECT_EQ(direct.exit_code, 1);
  EXPECT_NE(direct.err.find("in use by another hubcache process"), std::string::npos)
      << direct.err;
  EXPECT_NE(direct.err.find("--endpoint"), std::string::npos) << direct.err;

  // ls, pin and export read beside the daemon.
  auto through = Hubcache({"prefetch", "datasets/org/data", "--endpoint", url()});
  ASSERT_EQ(through.exit_code, 0) << through.out << through.err;
  EXPECT_NE(through.out.find("1202 files"), std::string::npos) << through.out;
  const Json data = Repo(Ls(), "datasets/org/data");
  ASSERT_FALSE(data.is_null());
  EXPECT_EQ(CachedBytes(data), Bytes(data));
  auto head = Head("/datasets/org/data/resolve/main/README.md");
  EXPECT_EQ(head.Header("x-cache"), "HIT");
  EXPECT_EQ(Hubcache({"pin", "datasets/org/data@main"}).exit_code, 0);
  EXPECT_EQ(Hubcache({"export", "datasets/org/data", "--out", (dir() / "b").string()}).exit_code,
            0);
  // rm needs the store to itself.
  EXPECT_EQ(Hubcache({"rm", "datasets/org/data"}).exit_code, 1);
}

TEST_F(OpsTest, PinKeepsFilesThroughGcAndRmForgetsARepo) {
  ASSERT_EQ(Prefetch({"org/model"}).exit_code, 0);
  ASSERT_EQ(Prefetch({"org/model@v1.0"}).exit_code, 0);
  auto pin = Hubcache({"pin", "org/model@main"});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_NE(pin.out.find("pinned model:org/model@main: 7 files"), std::string::npos) << pin.out;
  ASSERT_EQ(Hubcache({"gc", "--to", "0"}).exit_code, 0);
  Json model = Repo(Ls(), "org/model");
  ASSERT_EQ(model["commits"].size(), 2u);
  ASSERT_EQ(model["pins"].size(), 1u);
  for (const auto& c : model["commits"]) {
    if (c["commit"] == Commit("org/model")) {
      EXPECT_EQ(c["cached_files"], 7) << "pinned";
    }
  }
  auto text = Hubcache({"ls", "org/model"});
  EXPECT_NE(text.out.find("model.safetensors"), std::string::npos) << text.out;

  ASSERT_EQ(Hubcache({"unpin", "org/model"}).exit_code, 0);
  EXPECT_EQ(Hubcache({"unpin", "org/model"}).exit_code, 1) << "nothing left to unpin";
  ASSERT_EQ(Hubcache({"gc", "--to", "0"}).exit_code, 0);
  model = Repo(Ls(), "org/model");
  EXPECT_EQ(CachedBytes(model), 0u);

  ASSERT_EQ(Prefetch({"org/model"}).exit_code, 0);
  auto rm = Hubcache({"rm", "org/model@v1.0"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  model = Repo(Ls(), "org/model");
  EXPECT_FALSE(model["refs"].contains("v1.0"));
  EXPECT_TRUE(model["refs"].contains("main"));
  rm = Hubcache({"rm", "org/model"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_TRUE(Repo(Ls(), "org/model").is_null());
  std::size_t blob_files = 0;
  for (const auto& e : fs::recursive_directory_iterator(cache_dir() / "blobs")) {
    blob_files += e.is_regular_file();
  }
  EXPECT_EQ(blob_files, 0u);
  auto unknown = Hubcache({"rm", "org/model"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("not in the cache"), std::string::npos) << unknown.err;
}

TEST_F(OpsTest, ABundleCarriesReposToAnOfflineSiteForHuggingfaceJs) {
  ASSERT_TRUE(fs::exists(kJsDir + "/node_modules/@huggingface/hub"));
  ASSERT_EQ(Prefetch({"org/model"}).exit_code, 0);
  ASSERT_EQ(Prefetch({"org/model@v1.0"}).exit_code, 0);
  ASSERT_EQ(Prefetch({"datasets/org/data"}).exit_code, 0);
  const fs::path bundle = dir() / "bundle";
  auto exported = Hubcache({"export", "org/model", "datasets/org/data", "--out", bundle.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const Json manifest = Json::parse(Slurp(bundle / "manifest.json"));
  EXPECT_EQ(manifest["format"], "hubcache-bundle");
  EXPECT_EQ(manifest["format_version"], 1);
  ASSERT_EQ(manifest["repos"].size(), 2u);
  const std::string sha = hub().Etag("model", "org/model", "main", "model.safetensors");
  EXPECT_EQ(Slurp(bundle / "blobs" / "sha256" / sha), Content("org/model", "model.safetensors"));

  // The air-gapped site: a fresh store, the bundle imported twice (idempotent).
  const fs::path site = dir() / "site";
  auto imported = Hubcache({"import", bundle.string()}, site);
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  EXPECT_NE(imported.out.find("imported org/model: 2 commits, 14 files, 2 refs"),
            std::string::npos)
      << imported.out;
  auto again = Hubcache({"import", bundle.string()}, site);
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("0 blobs added"), std::string::npos) << again.out;

  // Offline, the Hub unreachable: huggingface.js by branch, tag and commit.
  fs::rename(cache_dir(), dir() / "origin");
  fs::rename(site, cache_dir());
  StartHubcache({"--offline", "--upstream", "http://127.0.0.1:1"});
  hub().ClearLog();
  auto js = Node({"serve", url(), hub().url(), (dir() / "client").string()});
  EXPECT_EQ(js.exit_code, 0) << js.out << js.err;
  EXPECT_NE(js.out.find("all checks passed"), std::string::npos) << js.out << js.err;
  // The fake Hub was asked for reference listings only, never for a file.
  EXPECT_EQ(hub().BodyBytesSent("resolve"), 0u);
  EXPECT_EQ(hub().RequestCount("paths-info"), 0u);
}

// Issue 15: after `prefetch org/model` (main) and a bundle, an air-gapped
// snapshot_download(revision="v1.1") failed with "not cached" although tag
// v1.1 is the very commit that was prefetched. Prefetch stores the Hub's
// refs listing and the bundle carries it: offline, a tag on a stored commit
// resolves everywhere a revision is taken, and a tag on a commit the site
// does not have gets the Hub's 404 RevisionNotFound.
TEST_F(OpsTest, OfflineEveryRefOnAPrefetchedCommitResolves) {
  const std::string main_commit = Commit("org/model");
  ASSERT_EQ(Commit("org/model", "v1.1"), main_commit) << "the fixture tags main's commit v1.1";
  ASSERT_NE(Commit("org/model", "v1.0"), main_commit);
  auto prefetched = Prefetch({"org/model"});
  ASSERT_EQ(prefetched.exit_code, 0) << prefetched.out << prefetched.err;
  EXPECT_EQ(hub().RequestCount("/api/models/org/model/refs"), 1u);
  const fs::path bundle = dir() / "bundle";
  auto exported = Hubcache({"export", "org/model", "--out", bundle.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const Json manifest = Json::parse(Slurp(bundle / "manifest.json"));
  bool carries_refs = false;
  for (const auto& doc : manifest["repos"][0]["docs"]) {
    carries_refs = carries_refs ||
                   (doc["revision"] == "@" && doc["request"] == "GET /org/model/refs" &&
                    Json::parse(doc["body"].get<std::string>())["tags"].size() == 2);
  }
  EXPECT_TRUE(carries_refs) << manifest["repos"][0]["docs"].dump();
  const fs::path site = dir() / "site";
  auto imported = Hubcache({"import", bundle.string()}, site);
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  EXPECT_NE(imported.out.find("imported org/model: 1 commits, 7 files, 1 refs"), std::string::npos)
      << imported.out;
  fs::rename(cache_dir(), dir() / "origin");
  fs::rename(site, cache_dir());
  StartHubcache({"--offline", "--upstream", "http://127.0.0.1:1"});

  // v1.1, as a name and as a full ref, on the file and API routes.
  for (const std::string rev : {"v1.1", "refs%2Ftags%2Fv1.1"}) {
    SCOPED_TRACE(rev);
    auto head = Head("/org/model/resolve/" + rev + "/config.json");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.Header("x-repo-commit"), main_commit);
    auto file = Get("/org/model/resolve/" + rev + "/model.safetensors");
    EXPECT_EQ(file.status, 200);
    EXPECT_TRUE(file.body == Content("org/model", "model.safetensors")) << "bytes differ";
    auto info = Get("/api/models/org/model/revision/" + rev);
    ASSERT_EQ(info.status, 200) << info.body;
    EXPECT_EQ(Json::parse(info.body)["sha"], main_commit);
  }
  // snapshot_download(revision="v1.1") as huggingface_hub makes it: repo
  // info at the tag, the tree at its commit, a HEAD per file at the commit.
  auto info = Get("/api/models/org/model/revision/v1.1");
  ASSERT_EQ(info.status, 200) << info.body;
  const std::string sha = Json::parse(info.body)["sha"];
  auto tree = Get("/api/models/org/model/tree/" + sha + "?recursive=true&expand=false");
  ASSERT_EQ(tree.status, 200) << tree.body;
  std::size_t files = 0;
  for (const auto& entry : Json::parse(tree.body)) {
    if (entry["type"] != "file") continue;
    ++files;
    // Encoded as huggingface_hub encodes it (HUB_PROTOCOL.md §1.3).
    std::string path;
    for (unsigned char c : entry["path"].get<std::string>()) {
      if (std::isalnum(c) ||
          std::string_view("-._~/").find(static_cast<char>(c)) != std::string_view::npos) {
        path += static_cast<char>(c);
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        path += {'%', kHex[c >> 4], kHex[c & 15]};
      }
    }
    EXPECT_EQ(Head("/org/model/resolve/" + sha + "/" + path).status, 200) << path;
  }
  EXPECT_EQ(files, 7u);
  auto listing = Get("/api/models/org/model/tree/v1.1/sub?recursive=true&expand=false");
  ASSERT_EQ(listing.status, 200) << listing.body;
  EXPECT_EQ(Json::parse(listing.body).size(), 2u);
  auto paths = Request("POST", "/api/models/org/model/paths-info/v1.1",
                       {{"Content-Type", "application/x-www-form-urlencoded"}},
                       "paths=config.json&expand=false");
  ASSERT_EQ(paths.status, 200) << paths.body;
  EXPECT_EQ(Json::parse(paths.body).size(), 1u);
  // The refs listing itself, as list_repo_refs asks for it.
  auto refs = Get("/api/models/org/model/refs");
  ASSERT_EQ(refs.status, 200) << refs.body;
  EXPECT_EQ(Json::parse(refs.body)["tags"].size(), 2u);

  // v1.0 is on a commit the bundle did not carry: the Hub's missing revision.
  auto expect_missing = [](const HttpResponse& r, const std::string& what) {
    EXPECT_EQ(r.status, 404) << what << " " << r.body;
    EXPECT_EQ(r.Header("x-error-code"), "RevisionNotFound") << what;
    EXPECT_EQ(r.Header("x-error-message"), "Invalid rev id: v1.0") << what;
    if (!r.body.empty()) {
      EXPECT_EQ(Json::parse(r.body, nullptr, false).value("error", ""), "Invalid rev id: v1.0")
          << what;
    }
  };
  expect_missing(Head("/org/model/resolve/v1.0/config.json"), "HEAD resolve");
  expect_missing(Get("/org/model/resolve/v1.0/config.json", {{"Range", "bytes=0-0"}}),
                 "ranged GET resolve");
  expect_missing(Get("/api/models/org/model/revision/v1.0?expand=sha"), "repo info");
  expect_missing(Get("/api/models/org/model/tree/v1.0?recursive=true"), "tree");
  expect_missing(Request("POST", "/api/models/org/model/paths-info/v1.0",
                         {{"Content-Type", "application/json"}}, R"({"paths":["config.json"]})"),
                 "paths-info");
  // A revision the listing does not name is still unknown: a clear 503.
  EXPECT_EQ(Head("/org/model/resolve/v9.9/config.json").status, 503);
  EXPECT_EQ(Get("/api/models/org/model/revision/v9.9").status, 503);

  // huggingface.js, offline by tag.
  ASSERT_TRUE(fs::exists(kJsDir + "/node_modules/@huggingface/hub"));
  auto js = Node({"tags", url(), hub().url(), (dir() / "client").string()});
  EXPECT_EQ(js.exit_code, 0) << js.out << js.err;
  EXPECT_NE(js.out.find("all checks passed"), std::string::npos) << js.out << js.err;

  // Merely unreachable (not --offline), the Hub may yet answer: v1.1 is
  // served from the store, v1.0 gets a 5xx that lets clients fall back to
  // their own cache, not a RevisionNotFound.
  StartHubcache({"--upstream", "http://127.0.0.1:1"});
  EXPECT_EQ(Head("/org/model/resolve/v1.1/config.json").status, 200);
  auto unreachable = Head("/org/model/resolve/v1.0/config.json");
  EXPECT_GE(unreachable.status, 500);
  EXPECT_EQ(unreachable.Header("x-error-code"), "");
}

TEST_F(OpsTest, ATamperedBundleIndexesNothingBad) {
  for (const char* repo : {"org/model", "datasets/org/data"}) {
    auto prefetched = Prefetch({repo});
    ASSERT_EQ(prefetched.exit_code, 0) << prefetched.out << prefetched.err;
  }
  const fs::path bundle = dir() / "bundle";
  ASSERT_EQ(Hubcache({"export", "org/model", "datasets/org/data", "--out", bundle.string()})
                .exit_code,
            0);
  const std::string sha = hub().Etag("model", "org/model", "main", "model.safetensors");
  const fs::path blob = bundle / "blobs" / "sha256" / sha;
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x5a');
  }
  const fs::path site = dir() / "site";
  auto flipped = Hubcache({"import", bundle.string()}, site);
  EXPECT_EQ(flipped.exit_code, 1) << flipped.out;
  EXPECT_NE(flipped.out.find("REJECTED org/model: model.safetensors"), std::string::npos)
      << flipped.out;
  EXPECT_NE(flipped.out.find("does not hash to " + sha), std::string::npos) << flipped.out;
  Json ls = Ls(site);
  EXPECT_TRUE(Repo(ls, "org/model").is_null()) << "nothing of the tampered repo is indexed";
  EXPECT_FALSE(Repo(ls, "datasets/org/data").is_null()) << "the intact repo is";

  // A manifest that lies about a size.
  ASSERT_EQ(Hubcache({"export", "org/model", "--out", bundle.string()}).exit_code, 0);
  Json manifest = Json::parse(Slurp(bundle / "manifest.json"));
  for (auto& commit : manifest["repos"][0]["commits"]) {
    for (auto& f : commit["files"]) {
      if (f["path"] == "config.json") f["size"] = f["size"].get<std::uint64_t>() + 1;
    }
  }
  std::ofstream(bundle / "manifest.json") << manifest.dump();
  auto lying = Hubcache({"import", bundle.string()}, site);
  EXPECT_EQ(lying.exit_code, 1) << lying.out;
  EXPECT_NE(lying.out.find("the manifest says"), std::string::npos) << lying.out;
  EXPECT_TRUE(Repo(Ls(site), "org/model").is_null());

  // Re-exported intact, the same import finishes the job.
  ASSERT_EQ(Hubcache({"export", "org/model", "--out", bundle.string()}).exit_code, 0);
  auto fixed = Hubcache({"import", bundle.string()}, site);
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out;
  EXPECT_FALSE(Repo(Ls(site), "org/model").is_null());
  // Not a bundle at all.
  auto nothing = Hubcache({"import", dir().string()}, site);
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_NE(nothing.err.find("manifest.json cannot be read"), std::string::npos) << nothing.err;
}

TEST_F(OpsTest, TheHfCacheLayoutGoesBothWays) {
  ASSERT_EQ(Prefetch({"org/model"}).exit_code, 0);
  ASSERT_EQ(Prefetch({"org/model@v1.0"}).exit_code, 0);
  const fs::path hf = dir() / "hf";
  auto exported = Hubcache({"export", "org/model", "--hf-cache", hf.string()});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const fs::path repo = hf / "models--org--model";
  EXPECT_EQ(Slurp(repo / "refs" / "main"), Commit("org/model")) << "no trailing newline";
  EXPECT_EQ(fs::read_symlink(repo / "snapshots" / Commit("org/model") / "sub" / "dir" /
                             "notes.txt")
                .string()
                .substr(0, 12),
            "../../../../");
  auto js = Node({"scan", hf.string(), hub().url()});
  EXPECT_EQ(js.exit_code, 0) << js.out << js.err;
  EXPECT_NE(js.out.find("all checks passed"), std::string::npos) << js.out;

  // Imported into a fresh store: every file verified and indexed.
  const fs::path site = dir() / "site";
  auto imported = Hubcache({"import", "--hf-cache", hf.string(), "--mark-public"}, site);
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  const Json model = Repo(Ls(site), "org/model");
  ASSERT_FALSE(model.is_null());
  EXPECT_EQ(model["refs"]["main"], Commit("org/model"));
  EXPECT_EQ(model["refs"]["v1.0"], Commit("org/model", "v1.0"));
  EXPECT_EQ(CachedBytes(model), Bytes(model));

  // A corrupted blob is reported and skipped; the rest goes in.
  const std::string sha = hub().Etag("model", "org/model", "main", "model.safetensors");
  {
    std::fstream f(repo / "blobs" / sha, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x01');
  }
  const fs::path other = dir() / "other";
  auto bad = Hubcache({"import", "--hf-cache", hf.string()}, other);
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("SKIPPED models--org--model: model.safetensors"), std::string::npos)
      << bad.out;
  auto files = Hubcache({"ls", "org/model", "--json"}, other);
  const Json listed = Json::parse(files.out);
  for (const auto& c : listed["commits"]) {
    if (c["commit"] == Commit("org/model")) {
      EXPECT_EQ(c["files"], 6) << "all but the corrupted file";
    }
  }
}

}  // namespace
}  // namespace hubcache::testing
