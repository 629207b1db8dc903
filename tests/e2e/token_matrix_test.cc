// The token matrix online (issue 18 §5): what each kind of token gets from
// hubcache for a gated, a private and a public repo whose files are cached,
// before and after the Hub changes its mind (an approval revoked, the public
// repo turned private, the private one deleted), once the grant or public
// fact hubcache holds has expired (access.grant_ttl and access.public_ttl of
// 3 s here). Each answer must be the one the Hub gives. Then the whole cache
// directory, the debug log, /metrics and every error body are searched for
// each token used: none appears.
//
// Then the offline columns: hubcache offline (--offline, or the Hub out of
// reach) with the grants it holds unexpired, expired, and expired but
// extended by access.offline_grant_ttl. Offline hubcache cannot ask the Hub,
// so a restricted file goes only to a token whose grant it holds; everyone
// else gets a clean 5xx naming the cause (never the bytes).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/asio.h"
#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/token_matrix.h"

namespace hubcache::testing {
namespace {

using std::chrono::milliseconds;

const std::string& kInvalid = kInvalidToken;
const std::vector<std::string>& kTokens = kMatrixTokens;
using Cell = TokenCell;

class TokenMatrixTest : public HubcacheTest {
 protected:
  // Asks for the repo's config.json with the cell's token (see ExpectCell).
  // Keeps every answer for the search at the end.
  void Expect(const Cell& cell) {
    ExpectCell(
        cell,
        [this](const std::string& method, const std::string& target, const Headers& headers) {
          return Request(method, target, headers);
        },
        ContentOf(cell.repo), bodies_);
  }

  // The repo's config.json, as read while the repo existed.
  const std::string& ContentOf(const std::string& repo) {
    auto it = contents_.find(repo);
    if (it == contents_.end()) it = contents_.emplace(repo, Content(repo, "config.json")).first;
    return it->second;
  }

  std::string bodies_;
  std::map<std::string, std::string> contents_;

  // Every token against the gated, the private and the public repo: the
  // tokens in `served` get the gated or private file, everyone gets the
  // public one, and the rest get `refused`.
  void ExpectOfflineColumn(const std::set<std::pair<std::string, std::string>>& served,
                           unsigned refused) {
    for (const std::string repo : {"org/gated", "org/private"}) {
      for (const std::string& token : kTokens) {
        const bool ok = served.contains({repo, token});
        Expect({repo, token, ok ? 200u : refused, ""});
      }
    }
    for (const std::string& token : kTokens) Expect({"org/model", token, 200, ""});
  }

  static std::uint16_t ClosedPort() {
    net::io_context ioc;
    net::ip::tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
  }
};


TEST_F(TokenMatrixTest, EachTokenGetsWhatTheHubWouldGiveBeforeAndAfterTheHubChangesItsMind) {
  StartHubcache({"--set", "access.grant_ttl=3s", "--set", "access.public_ttl=3s", "--set",
                 "log.level=debug"});
  // Cached by those who may read them.
  Expect({"org/gated", "hf_approved", 200, ""});
  Expect({"org/private", "hf_owner", 200, ""});
  Expect({"org/model", "", 200, ""});

  const std::vector<Cell> before = MatrixBefore();
  for (const Cell& cell : before) Expect(cell);

  // The Hub changes its mind; hubcache sees it once what it holds expires.
  ChangeTheHubsMind(hub());
  std::this_thread::sleep_for(milliseconds(3500));
  const std::vector<Cell> after = MatrixAfter();
  for (const Cell& cell : after) Expect(cell);

  // No token anywhere hubcache writes or answers.
  const std::string metrics = Get("/metrics").body;
  process().Signal(SIGTERM);
  EXPECT_EQ(process().Wait(std::chrono::seconds(30)), 0);
  const std::string log = process().err();
  StopHubcache();
  ExpectNoTokenIn({{"in the cache directory", EveryFileUnder(cache_dir())},
                   {"in /metrics", metrics},
                   {"in an answer", bodies_}},
                  log);
}

TEST_F(TokenMatrixTest, OfflineOnlyTheGrantsHubcacheHoldsOpenRestrictedFiles) {
  // Online first: the files cached, and a grant for each token that has one
  // (those of the refused tokens are refusals: they grant nothing).
  // Grants for 8 s: long enough for the unexpired columns on a busy machine.
  const std::vector<std::string> ttl = {"--set", "access.grant_ttl=8s"};
  StartHubcache(ttl);
  const auto first_grant = std::chrono::steady_clock::now();  // no grant is older
  for (const std::string& token : kTokens) {
    Expect({"org/gated", token,
            token == "hf_approved"  ? 200u
            : token == ""           ? 401u
            : token == kInvalid     ? 401u
                                    : 403u,
            token == kInvalid ? "" : token == "hf_approved" ? "" : "GatedRepo"});
  }
  Expect({"org/private", "hf_owner", 200, ""});
  Expect({"org/model", "", 200, ""});
  const auto last_grant = std::chrono::steady_clock::now();  // no grant is newer
  const std::set<std::pair<std::string, std::string>> granted = {{"org/gated", "hf_approved"},
                                                                 {"org/private", "hf_owner"}};
  const std::string unreachable = "http://127.0.0.1:" + std::to_string(ClosedPort());

  {
    SCOPED_TRACE("offline, grants unexpired");
    StartHubcache({"--offline", ttl[0], ttl[1]});
    ExpectOfflineColumn(granted, 503);
  }
  {
    SCOPED_TRACE("the Hub unreachable, grants unexpired");
    StartHubcache({"--upstream", unreachable, ttl[0], ttl[1]});
    ExpectOfflineColumn(granted, 502);
  }
  ASSERT_LT(std::chrono::steady_clock::now(), first_grant + std::chrono::seconds(8))
      << "the unexpired columns took longer than the grants last";
  std::this_thread::sleep_until(last_grant + milliseconds(8500));
  {
    SCOPED_TRACE("offline, grants expired");
    StartHubcache({"--offline", ttl[0], ttl[1]});
    ExpectOfflineColumn({}, 503);
  }
  {
    SCOPED_TRACE("the Hub unreachable, grants expired");
    StartHubcache({"--upstream", unreachable, ttl[0], ttl[1]});
    ExpectOfflineColumn({}, 502);
  }
  {
    SCOPED_TRACE("offline, grants expired but extended by access.offline_grant_ttl");
    StartHubcache({"--offline", ttl[0], ttl[1], "--set", "access.offline_grant_ttl=1h"});
    ExpectOfflineColumn(granted, 503);
  }
}

}  // namespace
}  // namespace hubcache::testing
