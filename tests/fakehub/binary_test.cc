// The hubcache-fakehub binary: ready line, access log, flags, signals.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>
#include <string>

#include "tests/fakehub/test_util.h"
#include "tests/support/subprocess.h"

namespace hubcache::fakehub {
namespace {

using hubcache::testing::Subprocess;
using std::chrono::seconds;
using testing::Fetch;
using testing::SplitUrl;

struct Ready {
  std::string hub, cdn, ca;
};

// Waits for the ready line and parses it.
std::optional<Ready> WaitReady(Subprocess& process) {
  if (!process.WaitForStdout("\n", std::chrono::seconds(30))) return std::nullopt;
  std::smatch m;
  const std::string out = process.out();
  if (!std::regex_search(out, m, std::regex(R"(^fakehub hub=(\S+) cdn=(\S+) ca=(\S*)\n)"))) {
    return std::nullopt;
  }
  return Ready{m[1], m[2], m[3]};
}

TEST(BinaryTest, PrintsReadyLineServesLogsAndStopsOnSigterm) {
  auto process = Subprocess::Start({FAKEHUB_BINARY, "--xet", "--latency-ms", "1"});
  const auto ready = WaitReady(*process);
  ASSERT_TRUE(ready.has_value()) << process->out() << process->err();
  EXPECT_TRUE(ready->hub.starts_with("http://127.0.0.1:"));
  EXPECT_TRUE(ready->cdn.starts_with("http://127.0.0.1:"));
  EXPECT_EQ(ready->ca, "");
  const auto [port, unused] = SplitUrl(ready->hub + "/");
  const auto r = Fetch(port, "HEAD", "/org/model/resolve/main/model.safetensors");
  EXPECT_EQ(r.status, 302u);
  EXPECT_FALSE(r.Header("x-xet-hash").empty());  // --xet
  EXPECT_TRUE(r.Header("location").starts_with(ready->cdn));
  EXPECT_TRUE(
      process->WaitForStderr("fakehub_request listener=hub method=HEAD "
                             "path=/org/model/resolve/main/model.safetensors status=302",
                             seconds(10)))
      << process->err();
  process->Signal(SIGTERM);
  EXPECT_EQ(process->Wait(seconds(10)), 0);
}

TEST(BinaryTest, FixedPortsTlsAndRates) {
  // Let the kernel pick two free ports, then ask the binary for them.
  std::uint16_t hub_port = 0;
  std::uint16_t cdn_port = 0;
  {
    auto probe = FakeHub::Start(Options{});
    hub_port = probe->port();
    cdn_port = probe->cdn_port();
  }
  auto process = Subprocess::Start({FAKEHUB_BINARY, "--port", std::to_string(hub_port),
                                    "--cdn-port", std::to_string(cdn_port), "--tls", "--conn-rate",
                                    "8M", "--total-rate", "100MB/s", "--quiet"});
  const auto ready = WaitReady(*process);
  ASSERT_TRUE(ready.has_value()) << process->out() << process->err();
  EXPECT_EQ(ready->hub, "https://127.0.0.1:" + std::to_string(hub_port));
  EXPECT_EQ(ready->cdn, "https://127.0.0.1:" + std::to_string(cdn_port));
  std::ifstream ca(ready->ca);
  std::string first_line;
  std::getline(ca, first_line);
  EXPECT_EQ(first_line, "-----BEGIN CERTIFICATE-----");
  process->Signal(SIGINT);
  EXPECT_EQ(process->Wait(seconds(10)), 0);
  EXPECT_EQ(process->err().find("fakehub_request"), std::string::npos);
  EXPECT_FALSE(std::ifstream(ready->ca).good());  // the CA is removed at exit
}

TEST(BinaryTest, ControlEndpointsWorkAgainstTheBinary) {
  auto process = Subprocess::Start({FAKEHUB_BINARY});
  const auto ready = WaitReady(*process);
  ASSERT_TRUE(ready.has_value());
  const auto [port, unused] = SplitUrl(ready->hub + "/");
  const auto before =
      Fetch(port, "HEAD", "/org/model/resolve/main/config.json").Header("x-repo-commit");
  const auto moved =
      Fetch(port, "POST", "/_fake/move?type=model&repo=org/model&branch=main&commit=c3");
  EXPECT_EQ(moved.status, 200u) << moved.body;
  const auto after =
      Fetch(port, "HEAD", "/org/model/resolve/main/config.json").Header("x-repo-commit");
  EXPECT_NE(after, before);
  EXPECT_NE(moved.body.find(after), std::string::npos);
  EXPECT_NE(Fetch(port, "GET", "/_fake/commit?repo=org/model&revision=main").body.find(after),
            std::string::npos);
  EXPECT_EQ(
      Fetch(port, "POST", "/_fake/faults", {}, R"({"path_contains":"refs","fail_first":1})").status,
      200u);
  EXPECT_EQ(Fetch(port, "GET", "/api/models/org/model/refs").status, 503u);
  EXPECT_EQ(Fetch(port, "GET", "/api/models/org/model/refs").status, 200u);
  const auto log = Fetch(port, "GET", "/_fake/log");
  EXPECT_NE(log.body.find("\"status\":503"), std::string::npos) << log.body;
  process->Signal(SIGTERM);
  EXPECT_EQ(process->Wait(seconds(10)), 0);
}

TEST(BinaryTest, BadFixtureOrFlagsFail) {
  const std::string bad = ::testing::TempDir() + "/fakehub-bad-fixture.toml";
  std::ofstream(bad) << "[[repo]]\nid = \"a/b\"\nbogus = true\n";
  const auto run = hubcache::testing::Run({FAKEHUB_BINARY, "--fixture", bad});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("unknown key 'bogus'"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(hubcache::testing::Run({FAKEHUB_BINARY, "--conn-rate", "fast"}).exit_code, 2);
  EXPECT_NE(hubcache::testing::Run({FAKEHUB_BINARY, "--no-such-flag"}).exit_code, 0);
}

}  // namespace
}  // namespace hubcache::fakehub
