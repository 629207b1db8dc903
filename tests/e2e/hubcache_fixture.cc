#include "tests/e2e/hubcache_fixture.h"

#include <csignal>
#include <algorithm>
#include <cstdlib>

namespace hubcache::testing {

using std::chrono::seconds;

fakehub::FakeHub* HubcacheTest::hub_ = nullptr;

void HubcacheTest::SetUpTestSuite() {
  // Xet hints on: hubcache must strip them all.
  fakehub::Options options;
  options.xet = true;
  hub_ = fakehub::FakeHub::Start(std::move(options)).release();
}

void HubcacheTest::TearDownTestSuite() {
  delete hub_;
  hub_ = nullptr;
}

void HubcacheTest::SetUp() {
  hub_->ClearFaults();
  hub_->ResetAccess();
  hub_->ClearLog();
  hub_->SetBandwidth(0, 0);
  hub_->SetLatency(std::chrono::milliseconds(0));
  hub_->SetSignedUrlTtl(seconds(3600));
  char pattern[] = "/tmp/hubcache-e2e-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  dir_ = pattern;
  cache_dir_ = dir_ / "cache";
}

void HubcacheTest::TearDown() {
  StopHubcache();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void HubcacheTest::StartHubcache(const std::vector<std::string>& extra,
                                 const std::map<std::string, std::string>& env) {
  StopHubcache();
  std::vector<std::string> argv = {HUBCACHE_BINARY, "serve",   "--listen",
                                   "127.0.0.1:0",   "--cache-dir", cache_dir_.string(),
                                   "--set",         "server.threads=2",
                                   "--set",         "upstream.max_retries=2"};
  if (std::find(extra.begin(), extra.end(), "--upstream") == extra.end()) {
    argv.insert(argv.end(), {"--upstream", hub_->url()});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = Subprocess::Start(argv, env);
  ASSERT_TRUE(process_->WaitForStderr("hubcache_started", seconds(30))) << process_->err();
  const std::string& err = process_->err();
  const std::size_t at = err.find("listen=127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << err;
  port_ = static_cast<std::uint16_t>(std::atoi(err.c_str() + at + 17));
  ASSERT_NE(port_, 0) << err;
}

void HubcacheTest::StopHubcache() {
  if (!process_) return;
  if (process_->Running()) {
    process_->Signal(SIGTERM);
    auto status = process_->Wait(seconds(30));
    EXPECT_EQ(status, 0) << process_->err();
  }
  process_.reset();
}

RunResult HubcacheTest::Verify() {
  return testing::Run({HUBCACHE_BINARY, "verify", "--cache-dir", cache_dir_.string()}, {},
             std::chrono::minutes(2));
}

HttpResponse HubcacheTest::Request(const std::string& method, const std::string& target,
                                   const Headers& headers, const std::string& body) {
  auto response = HttpRequest("127.0.0.1", port_, method, target, headers, body);
  if (!response) {
    ADD_FAILURE() << method << " " << target << ": no response";
    return {};
  }
  return *response;
}

std::unique_ptr<HttpConnection> HubcacheTest::Connect() {
  return HttpConnection::Connect("127.0.0.1", port_);
}

}  // namespace hubcache::testing
