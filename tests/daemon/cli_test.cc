// End-to-end tests of the `hubcache` binary: exit codes, configuration
// errors, and the serve lifecycle (start, /healthz, SIGTERM, lock).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "store/blob_store.h"
#include "store/blob_index.h"
#include "tests/support/temp_dir.h"
#include "tests/support/http_client.h"
#include "tests/support/subprocess.h"

namespace hubcache {
namespace {

namespace fs = std::filesystem;
using testing::HttpConnection;
using testing::HttpRequest;
using testing::Subprocess;
using std::chrono::seconds;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = {{"HOME", dir_.string()}, {"XDG_CACHE_HOME", (dir_ / "xdg").string()}};
  }

  testing::RunResult Hubcache(std::vector<std::string> args) {
    args.insert(args.begin(), HUBCACHE_BINARY);
    return testing::Run(args, env_);
  }

  std::unique_ptr<Subprocess> StartServe(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {HUBCACHE_BINARY, "serve", "--listen", "127.0.0.1:0",
                                     "--cache-dir", (dir_ / "cache").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Subprocess::Start(args, env_);
  }

  // The port of the first listen address in the startup line.
  static std::uint16_t PortFromStartupLine(const std::string& err, int index = 0) {
    std::smatch m;
    const std::regex listen(R"(listen=([^ ]+))");
    if (!std::regex_search(err, m, listen)) return 0;
    std::string list = m[1];
    for (int i = 0; i < index; ++i) list = list.substr(list.find(',') + 1);
    list = list.substr(0, list.find(','));
    return static_cast<std::uint16_t>(std::stoi(list.substr(list.rfind(':') + 1)));
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }

  testing::TempDir temp_{"hubcache-cli-test"};
  const fs::path dir_ = temp_.path();
  std::map<std::string, std::string> env_;
};

TEST_F(CliTest, VersionAndHelpExitZero) {
  auto version = Hubcache({"version"});
  EXPECT_EQ(version.exit_code, kExitOk);
  EXPECT_TRUE(std::regex_search(version.out, std::regex(R"(^hubcache \d+\.\d+\.\d+\n$)")))
      << version.out;
  auto help = Hubcache({"--help"});
  EXPECT_EQ(help.exit_code, kExitOk);
  for (const char* sub : {"serve", "config", "version"}) {
    EXPECT_NE(help.out.find(sub), std::string::npos) << sub;
  }
  auto serve_help = Hubcache({"serve", "--help"});
  EXPECT_EQ(serve_help.exit_code, kExitOk);
  for (const char* flag : {"--config", "--listen", "--cache-dir", "--upstream",
                           "--upstream-ca-file", "--offline", "--log-level"}) {
    EXPECT_NE(serve_help.out.find(flag), std::string::npos) << flag;
  }
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Hubcache({}).exit_code, kExitUsage);
  EXPECT_EQ(Hubcache({"frobnicate"}).exit_code, kExitUsage);
  EXPECT_EQ(Hubcache({"serve", "--no-such-flag"}).exit_code, kExitUsage);
  EXPECT_EQ(Hubcache({"config"}).exit_code, kExitUsage);
  auto bad_set = Hubcache({"config", "check", "--set", "novalue"});
  EXPECT_EQ(bad_set.exit_code, kExitUsage);
  EXPECT_NE(bad_set.err.find("expected KEY=VALUE"), std::string::npos) << bad_set.err;
}

TEST_F(CliTest, ConfigCheckAcceptsAValidFile) {
  const std::string file = WriteFile("ok.toml", "[server]\nthreads = 2\n");
  auto result = Hubcache({"config", "check", "--config", file});
  EXPECT_EQ(result.exit_code, kExitOk) << result.err;
  EXPECT_NE(result.out.find("valid"), std::string::npos);
}

TEST_F(CliTest, ConfigCheckNamesTheProblemAndExitsTwo) {
  const std::string file = WriteFile("bad.toml", "[store]\nmax_bytes = \"lots\"\n[sever]\n");
  auto result = Hubcache({"config", "check", "--config", file});
  EXPECT_EQ(result.exit_code, kExitUsage);
  EXPECT_NE(result.err.find("store.max_bytes = \"lots\" (file " + file + ")"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("expected a size such as 500GB"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("did you mean [server]?"), std::string::npos) << result.err;
}

TEST_F(CliTest, ConfigPrintShowsEffectiveValuesAndOrigins) {
  const std::string file = WriteFile("c.toml", "[upstream]\nconnections = 4\n");
  env_["HUBCACHE_CACHE_REF_TTL"] = "1m";
  auto result = Hubcache({"config", "print", "--config", file, "--log-level", "debug",
                          "--set", "store.max_bytes=1TB"});
  ASSERT_EQ(result.exit_code, kExitOk) << result.err;
  EXPECT_NE(result.out.find("connections = 4  # file " + file), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("ref_ttl = \"1m\"  # env HUBCACHE_CACHE_REF_TTL"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("level = \"debug\"  # flag --log-level"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("max_bytes = \"1TB\"  # flag --set store.max_bytes"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("cache_dir = \"" + (dir_ / "xdg").string() + "/hubcache\"  # default"),
            std::string::npos)
      << result.out;
}

TEST_F(CliTest, ServeRefusesInvalidConfigurationWithExitTwo) {
  env_["HUBCACHE_SERVER_LISTEN"] = "nowhere";
  auto result = Hubcache({"serve"});
  EXPECT_EQ(result.exit_code, kExitUsage);
  EXPECT_NE(result.err.find("server.listen"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("env HUBCACHE_SERVER_LISTEN"), std::string::npos) << result.err;
}

TEST_F(CliTest, ServeAnswersHealthzAndStopsCleanlyOnSigterm) {
  auto serve = StartServe({"--listen", "[::1]:0"});
  ASSERT_TRUE(serve->WaitForStderr("hubcache_started", seconds(20))) << serve->err();
  EXPECT_NE(serve->err().find("cache_dir=" + (dir_ / "cache").string()), std::string::npos);
  EXPECT_NE(serve->err().find("upstream=https://huggingface.co"), std::string::npos);
  const std::uint16_t v4 = PortFromStartupLine(serve->err(), 0);
  const std::uint16_t v6 = PortFromStartupLine(serve->err(), 1);
  ASSERT_NE(v4, 0);
  ASSERT_NE(v6, 0);
  EXPECT_TRUE(fs::is_directory(dir_ / "cache"));

  auto response = HttpRequest("127.0.0.1", v4, "GET", "/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->body, R"({"status":"ok"})");
  response = HttpRequest("::1", v6, "GET", "/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200u);
  response = HttpRequest("127.0.0.1", v4, "GET", "/readyz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->body, R"({"status":"ready"})");

  // An idle keep-alive connection must not hold up the shutdown.
  auto idle = HttpConnection::Connect("127.0.0.1", v4);
  ASSERT_TRUE(idle);
  ASSERT_TRUE(idle->Request("GET", "/healthz"));

  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(seconds(10)), kExitOk) << serve->err();
  EXPECT_NE(serve->err().find("shutdown_started signal=15"), std::string::npos) << serve->err();
  EXPECT_NE(serve->err().find("hubcache_stopped"), std::string::npos) << serve->err();
  auto [data, orderly] = idle->ReadUntilClose(seconds(2));
  EXPECT_TRUE(data.empty());
  EXPECT_TRUE(orderly);
}

TEST_F(CliTest, SigintAlsoStopsCleanly) {
  auto serve = StartServe();
  ASSERT_TRUE(serve->WaitForStderr("hubcache_started", seconds(20))) << serve->err();
  serve->Signal(SIGINT);
  EXPECT_EQ(serve->Wait(seconds(10)), kExitOk) << serve->err();
}

TEST_F(CliTest, SecondInstanceOnTheSameCacheDirIsRefused) {
  auto first = StartServe();
  ASSERT_TRUE(first->WaitForStderr("hubcache_started", seconds(20))) << first->err();
  auto second = Hubcache({"serve", "--listen", "127.0.0.1:0", "--cache-dir",
                          (dir_ / "cache").string()});
  EXPECT_EQ(second.exit_code, kExitFailure);
  EXPECT_NE(second.err.find("in use by another hubcache process (pid " +
                            std::to_string(first->pid()) + ")"),
            std::string::npos)
      << second.err;
  // The first one is unaffected.
  const std::uint16_t port = PortFromStartupLine(first->err());
  auto response = HttpRequest("127.0.0.1", port, "GET", "/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200u);
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(seconds(10)), kExitOk);
  // Once it is gone the directory can be used again.
  auto third = StartServe();
  ASSERT_TRUE(third->WaitForStderr("hubcache_started", seconds(20))) << third->err();
  third->Signal(SIGTERM);
  EXPECT_EQ(third->Wait(seconds(10)), kExitOk);
}

TEST_F(CliTest, PortInUseIsARuntimeFailure) {
  auto first = StartServe();
  ASSERT_TRUE(first->WaitForStderr("hubcache_started", seconds(20))) << first->err();
  const std::uint16_t port = PortFromStartupLine(first->err());
  auto second = Hubcache({"serve", "--listen", "127.0.0.1:" + std::to_string(port),
                          "--cache-dir", (dir_ / "other").string()});
  EXPECT_EQ(second.exit_code, kExitFailure);
  EXPECT_NE(second.err.find("cannot listen on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << second.err;
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(seconds(10)), kExitOk);
}

TEST_F(CliTest, UnusableCacheDirIsARuntimeFailure) {
  WriteFile("afile", "x");
  auto result = Hubcache({"serve", "--listen", "127.0.0.1:0", "--cache-dir",
                          (dir_ / "afile").string()});
  EXPECT_EQ(result.exit_code, kExitFailure);
  EXPECT_NE(result.err.find("cannot open cache directory"), std::string::npos) << result.err;
}

TEST_F(CliTest, JsonLogFormatWritesOneObjectPerLine) {
  auto serve = StartServe({"--set", "log.format=json"});
  ASSERT_TRUE(serve->WaitForStderr("hubcache_started", seconds(20))) << serve->err();
  serve->Signal(SIGTERM);
  ASSERT_EQ(serve->Wait(seconds(10)), kExitOk);
  std::istringstream lines(serve->err());
  std::string line;
  int started = 0;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);  // throws (fails) if not JSON
    EXPECT_TRUE(json.contains("ts") && json.contains("level") && json.contains("event"));
    if (json["event"] == "hubcache_started") {
      ++started;
      EXPECT_EQ(json["module"], "daemon");
      EXPECT_EQ(json["cache_dir"], (dir_ / "cache").string());
      EXPECT_EQ(json["offline"], false);
    }
  }
  EXPECT_EQ(started, 1);
}

TEST_F(CliTest, VerifyReportsCorruptionAndRepairFixesIt) {
  const fs::path cache = dir_ / "cache";
  store::Digest good = store::HashBytes(store::DigestKind::kSha256, "good");
  store::Digest bad = store::HashBytes(store::DigestKind::kGitSha1, "bad content");
  {
    store::Options options;
    options.cache_dir = cache.string();
    auto blobs = store::BlobStore::Open(options);
    ASSERT_TRUE(blobs);
    for (auto [digest, text] : {std::pair{good, std::string("good")},
                                std::pair{bad, std::string("bad content")}}) {
      auto writer = (*blobs)->BeginWrite(digest, text.size());
      ASSERT_TRUE(writer);
      ASSERT_TRUE((*writer)->WriteAt(
          0, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}));
      ASSERT_TRUE((*writer)->Commit());
    }
    std::ofstream((*blobs)->BlobPath(bad), std::ios::binary) << "BAD content";
  }
  auto clean_before = Hubcache({"verify", "--cache-dir", (dir_ / "empty").string()});
  EXPECT_EQ(clean_before.exit_code, kExitOk) << clean_before.err;
  EXPECT_NE(clean_before.out.find("verified 0 blobs"), std::string::npos) << clean_before.out;

  auto found = Hubcache({"verify", "--cache-dir", cache.string()});
  EXPECT_EQ(found.exit_code, kExitFailure) << found.err;
  EXPECT_NE(found.out.find("sha1:" + bad.Hex() + ": content hashes to"), std::string::npos)
      << found.out;
  EXPECT_NE(found.out.find("1 corrupt"), std::string::npos) << found.out;
  EXPECT_NE(found.out.find("--repair"), std::string::npos) << found.out;

  auto repaired = Hubcache({"verify", "--repair", "--cache-dir", cache.string()});
  EXPECT_EQ(repaired.exit_code, kExitFailure);
  EXPECT_NE(repaired.out.find("repaired"), std::string::npos) << repaired.out;

  auto clean = Hubcache({"verify", "--cache-dir", cache.string()});
  EXPECT_EQ(clean.exit_code, kExitOk) << clean.out << clean.err;
  EXPECT_NE(clean.out.find("verified 1 blobs (4 bytes hashed)"), std::string::npos) << clean.out;
}

TEST_F(CliTest, VerifyRefusesWhileTheDaemonRuns) {
  auto serve = StartServe();
  ASSERT_TRUE(serve->WaitForStderr("hubcache_started", seconds(20))) << serve->err();
  auto result = Hubcache({"verify", "--cache-dir", (dir_ / "cache").string()});
  EXPECT_EQ(result.exit_code, kExitFailure);
  EXPECT_NE(result.err.find("in use by a running hubcache (pid " + std::to_string(serve->pid())),
            std::string::npos)
      << result.err;
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(seconds(10)), kExitOk);
}

TEST_F(CliTest, GcEvictsOldestUnpinnedBlobsAndRefusesWhileTheDaemonRuns) {
  const fs::path cache = dir_ / "cache";
  std::vector<store::Digest> digests;
  {
    store::Options options;
    options.cache_dir = cache.string();
    auto blobs = store::BlobStore::Open(options);
    ASSERT_TRUE(blobs);
    for (int i = 0; i < 3; ++i) {
      const std::string text(1000, static_cast<char>('a' + i));
      digests.push_back(store::HashBytes(store::DigestKind::kSha256, text));
      auto writer = (*blobs)->BeginWrite(digests.back(), text.size());
      ASSERT_TRUE(writer);
      ASSERT_TRUE((*writer)->WriteAt(
          0, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}));
      ASSERT_TRUE((*writer)->Commit());
    }
    ASSERT_TRUE((*blobs)->index().Pin("model/org/keep@main", {digests[0]}));
    ASSERT_TRUE((*blobs)->blob_index().Flush());
  }
  auto bad = Hubcache({"gc", "--cache-dir", cache.string(), "--to", "lots"});
  EXPECT_EQ(bad.exit_code, kExitUsage);
  EXPECT_NE(bad.err.find("--to lots"), std::string::npos) << bad.err;

  // Down to 2000 bytes: one unpinned blob goes, the pinned one stays.
  auto some = Hubcache({"gc", "--cache-dir", cache.string(), "--to", "2000"});
  EXPECT_EQ(some.exit_code, kExitOk) << some.err;
  EXPECT_NE(some.out.find("evicted 1 blobs (1000 bytes)"), std::string::npos) << some.out;
  {
    store::Options options;
    options.cache_dir = cache.string();
    auto blobs = store::BlobStore::Open(options);
    ASSERT_TRUE(blobs);
    EXPECT_TRUE((*blobs)->index().GetBlob(digests[0])->has_value());  // pinned
    EXPECT_EQ(*(*blobs)->index().BlobCount(), 2u);
  }
  // To zero: everything but the pinned blob.
  auto all = Hubcache({"gc", "--cache-dir", cache.string(), "--to", "0"});
  EXPECT_EQ(all.exit_code, kExitOk) << all.err;
  EXPECT_NE(all.out.find("holds 1000 bytes in 1 blobs"), std::string::npos) << all.out;
  {
    store::Options options;
    options.cache_dir = cache.string();
    auto blobs = store::BlobStore::Open(options);
    ASSERT_TRUE(blobs);
    EXPECT_TRUE((*blobs)->Lookup(digests[0]));
    EXPECT_FALSE((*blobs)->Lookup(digests[1]));
    EXPECT_FALSE((*blobs)->Lookup(digests[2]));
  }

  auto serve = StartServe();
  ASSERT_TRUE(serve->WaitForStderr("hubcache_started", seconds(20))) << serve->err();
  auto refused = Hubcache({"gc", "--cache-dir", cache.string()});
  EXPECT_EQ(refused.exit_code, kExitFailure);
  EXPECT_NE(refused.err.find("before running gc"), std::string::npos) << refused.err;
  serve->Signal(SIGTERM);
  EXPECT_EQ(serve->Wait(seconds(10)), kExitOk);
}

}  // namespace
}  // namespace hubcache
