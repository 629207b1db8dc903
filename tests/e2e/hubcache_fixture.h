// The end-to-end fixture: the real hubcache binary in front of an in-process
// fake Hub, on 127.0.0.1.
//
// One fake Hub per test suite (loading its fixture hashes 300 MB); each test
// gets a fresh hubcache process with its own cache directory, and the fake
// Hub's faults, log, bandwidth and latency are reset.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/fakehub/fake_hub.h"
#include "tests/support/http_client.h"
#include "tests/support/subprocess.h"

namespace hubcache::testing {

class HubcacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // Starts hubcache on a free port with this test's cache directory,
  // upstream.url pointing at the fake Hub, `extra` arguments and `env` added
  // to its environment. Stops the one running first, if any.
  void StartHubcache(const std::vector<std::string>& extra = {},
                     const std::map<std::string, std::string>& env = {});
  // SIGTERM and wait.
  void StopHubcache();
  // `hubcache verify` on this test's cache directory (the daemon stopped).
  RunResult Verify();

  // One request on a fresh connection to hubcache.
  HttpResponse Request(const std::string& method, const std::string& target,
                       const Headers& headers = {}, const std::string& body = {});
  HttpResponse Get(const std::string& target, const Headers& headers = {}) {
    return Request("GET", target, headers);
  }
  HttpResponse Head(const std::string& target, const Headers& headers = {}) {
    return Request("HEAD", target, headers);
  }
  std::unique_ptr<HttpConnection> Connect();

  // The fake Hub's expected content and metadata of a model file at `rev`.
  std::string Content(const std::string& repo, const std::string& path,
                      const std::string& rev = "main", const std::string& type = "model") const {
    return hub_->FileContent(type, repo, rev, path);
  }
  std::string Commit(const std::string& repo, const std::string& rev = "main",
                     const std::string& type = "model") const {
    return hub_->Commit(type, repo, rev);
  }

  static fakehub::FakeHub& hub() { return *hub_; }
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& cache_dir() const { return cache_dir_; }
  Subprocess& process() { return *process_; }

 private:
  static fakehub::FakeHub* hub_;
  std::filesystem::path dir_;
  std::filesystem::path cache_dir_;
  std::unique_ptr<Subprocess> process_;
  std::uint16_t port_ = 0;
};

}  // namespace hubcache::testing
