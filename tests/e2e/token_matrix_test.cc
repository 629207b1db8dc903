// The token matrix online (issue 18 §5): what each kind of token gets from
// hubcache for a gated, a private and a public repo whose files are cached,
// before and after the Hub changes its mind (an approval revoked, the public
// repo turned private, the private one deleted), once the grant or public
// fact hubcache holds has expired (access.grant_ttl and access.public_ttl of
// 1 s here). Each answer must be the one the Hub gives. Then the whole cache
// directory, the debug log, /metrics and every error body are searched for
// each token used: none appears.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/e2e/hubcache_fixture.h"

namespace hubcache::testing {
namespace {

using std::chrono::milliseconds;

const std::string kInvalid = "hf_NotAToken0123456789";
const std::vector<std::string> kTokens = {"", kInvalid, "hf_user", "hf_approved", "hf_owner"};

struct Cell {
  std::string repo;
  std::string token;
  unsigned status;
  std::string code;  // X-Error-Code
};

std::string Name(const std::string& token) { return token.empty() ? "(none)" : token; }

class TokenMatrixTest : public HubcacheTest {
 protected:
  // Asks for the repo's config.json with `token`; checks status, error code
  // and, on 200, the bytes. Keeps every body for the search at the end.
  void Expect(const Cell& cell) {
    SCOPED_TRACE(cell.repo + " with " + Name(cell.token));
    Headers headers;
    if (!cell.token.empty()) headers.emplace_back("Authorization", "Bearer " + cell.token);
    const std::string target = "/" + cell.repo + "/resolve/main/config.json";
    for (const char* method : {"HEAD", "GET"}) {
      auto r = Request(method, target, headers);
      EXPECT_EQ(r.status, cell.status) << method << " " << r.body;
      EXPECT_EQ(r.Header("x-error-code"), cell.code) << method;
      if (cell.status == 200 && std::string(method) == "GET") {
        EXPECT_EQ(r.body, Content(cell.repo, "config.json"));
      }
      bodies_ += r.body;
      for (const auto& [name, value] : r.headers) bodies_ += name + ": " + value + "\n";
    }
  }

  std::string bodies_;
};

TEST_F(TokenMatrixTest, EachTokenGetsWhatTheHubWouldGiveBeforeAndAfterTheHubChangesItsMind) {
  StartHubcache({"--set", "access.grant_ttl=1s", "--set", "access.public_ttl=1s", "--set",
                 "log.level=debug"});
  // Cached by those who may read them.
  Expect({"org/gated", "hf_approved", 200, ""});
  Expect({"org/private", "hf_owner", 200, ""});
  Expect({"org/model", "", 200, ""});

  const std::vector<Cell> before = {
      {"org/gated", "", 401, "GatedRepo"},
      {"org/gated", kInvalid, 401, ""},
      {"org/gated", "hf_user", 403, "GatedRepo"},
      {"org/gated", "hf_owner", 403, "GatedRepo"},
      {"org/gated", "hf_approved", 200, ""},
      {"org/private", "", 401, "RepoNotFound"},
      {"org/private", kInvalid, 401, ""},
      {"org/private", "hf_user", 404, "RepoNotFound"},
      {"org/private", "hf_approved", 404, "RepoNotFound"},
      {"org/private", "hf_owner", 200, ""},
      {"org/model", "", 200, ""},
      // The Hub refuses an invalid token everywhere; hubcache serves a cached
      // public file without asking (README "Access": a known difference,
      // nothing restricted is ever served this way).
      {"org/model", kInvalid, 200, ""},
      {"org/model", "hf_user", 200, ""},
  };
  for (const Cell& cell : before) Expect(cell);

  // The Hub changes its mind; hubcache sees it once what it holds expires.
  hub().SetTokenAccess("model", "org/gated", "hf_approved", false);
  hub().SetPrivate("model", "org/model", true);
  hub().DeleteRepo("model", "org/private");
  std::this_thread::sleep_for(milliseconds(1500));
  const std::vector<Cell> after = {
      {"org/gated", "hf_approved", 403, "GatedRepo"},
      {"org/gated", "", 401, "GatedRepo"},
      {"org/model", "", 401, "RepoNotFound"},
      {"org/model", "hf_user", 404, "RepoNotFound"},
      {"org/model", kInvalid, 401, ""},
      {"org/private", "hf_owner", 404, "RepoNotFound"},
      {"org/private", "", 401, "RepoNotFound"},
  };
  for (const Cell& cell : after) Expect(cell);

  // No token anywhere hubcache writes or answers.
  const std::string metrics = Get("/metrics").body;
  process().Signal(SIGTERM);
  EXPECT_EQ(process().Wait(std::chrono::seconds(30)), 0);
  const std::string log = process().err();
  StopHubcache();
  std::string disk;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(cache_dir())) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    disk += out.str();
  }
  for (const std::string& token : kTokens) {
    if (token.empty()) continue;
    SCOPED_TRACE(token);
    EXPECT_EQ(disk.find(token), std::string::npos) << "in the cache directory";
    EXPECT_EQ(log.find(token), std::string::npos) << "in the debug log";
    EXPECT_EQ(metrics.find(token), std::string::npos) << "in /metrics";
    EXPECT_EQ(bodies_.find(token), std::string::npos) << "in an answer";
  }
  EXPECT_NE(log.find("access_refused"), std::string::npos) << "the log was at debug level";
}

}  // namespace
}  // namespace hubcache::testing
