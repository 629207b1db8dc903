// The access policy end to end: gated and private repos cached by an
// authorized token are never served to anyone else, online or offline; an
// unreachable Hub gets a prompt JSON error; tokens never leak.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/asio.h"
#include "tests/e2e/hubcache_fixture.h"

namespace hubcache::testing {
namespace {

using std::chrono::seconds;

struct Restricted {
  std::string repo;
  std::string token;        // authorized
  unsigned anonymous;       // status without a token
  std::string anonymous_code;
  unsigned other;           // status for a valid but unauthorized token
  std::string other_code;
};

const Restricted kRestricted[] = {
    {"org/gated", "hf_approved", 401, "GatedRepo", 403, "GatedRepo"},
    {"org/private", "hf_owner", 401, "RepoNotFound", 404, "RepoNotFound"},
};

Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class AccessTest : public HubcacheTest {
 protected:
  // Every file hubcache wrote, concatenated: tokens must not be in it.
  std::string EverythingOnDisk() {
    std::string all;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(cache_dir())) {
      if (entry.is_regular_file()) all += ReadFile(entry.path());
    }
    return all;
  }
  void ExpectRefused(const Restricted& r, const std::string& target, const Headers& headers,
                     unsigned status, const std::string& code) {
    for (const char* method : {"HEAD", "GET"}) {
      auto response = Request(method, target, headers);
      EXPECT_EQ(response.status, status) << method << " " << target;
      EXPECT_EQ(response.Header("x-error-code"), code) << method << " " << target;
      EXPECT_NE(response.body, Content(r.repo, "config.json"));
    }
    auto ranged = Request("GET", target, [&] {
      Headers h = headers;
      h.emplace_back("Range", "bytes=0-0");
      return h;
    }());
    EXPECT_EQ(ranged.status, status) << "ranged " << target;
  }
};

TEST_F(AccessTest, CachedRestrictedFilesAreServedOnlyToAuthorizedTokens) {
  StartHubcache();
  for (const auto& r : kRestricted) {
    SCOPED_TRACE(r.repo);
    const std::string target = "/" + r.repo + "/resolve/main/config.json";
    auto first = Get(target, Bearer(r.token));
    ASSERT_EQ(first.status, 200);
    EXPECT_EQ(first.body, Content(r.repo, "config.json"));
    EXPECT_EQ(first.Header("x-cache"), "MISS");

    ExpectRefused(r, target, {}, r.anonymous, r.anonymous_code);
    ExpectRefused(r, target, Bearer("hf_user"), r.other, r.other_code);
    auto invalid = Head(target, Bearer("hf_bogus"));
    EXPECT_EQ(invalid.status, 401);
    EXPECT_EQ(invalid.Header("x-error-message"), "Invalid credentials in Authorization header");
    if (r.repo == "org/gated") {
      EXPECT_NE(Head(target, Bearer("hf_user")).Header("x-error-message").find(
                    "not in the authorized list"),
                std::string::npos);
    }

    hub().ClearLog();
    auto again = Get(target, Bearer(r.token));
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.Header("x-cache"), "HIT");
    EXPECT_EQ(again.body, Content(r.repo, "config.json"));
    EXPECT_EQ(hub().BodyBytesSent(), 0u);  // the grant is cached, the bytes too
  }
  // No token in the log, the store or the index.
  for (const char* token : {"hf_approved", "hf_owner", "hf_user", "hf_bogus"}) {
    EXPECT_EQ(process().err().find(token), std::string::npos) << token;
    EXPECT_EQ(EverythingOnDisk().find(token), std::string::npos) << token;
  }
}

TEST_F(AccessTest, TheClientsTokenReachesTheHubForEveryRouteAndNeverTheCdn) {
  StartHubcache();
  const Headers token = Bearer("hf_owner");
  const std::string commit = Commit("org/private");
  ASSERT_EQ(Head("/org/private/resolve/main/model.safetensors", token).status, 200);
  ASSERT_EQ(Get("/org/private/resolve/main/model.safetensors", token).status, 200);
  ASSERT_EQ(Get("/api/models/org/private/tree/" + commit, token).status, 200);
  ASSERT_EQ(Get("/api/models/org/private/revision/main", token).status, 200);
  ASSERT_EQ(Request("POST", "/api/models/org/private/paths-info/" + commit,
                    {{"Authorization", "Bearer hf_owner"}, {"Content-Type", "application/json"}},
                    R"({"paths":["config.json"]})")
                .status,
            200);
  std::size_t hub_requests = 0, cdn_requests = 0;
  for (const auto& entry : hub().Log()) {
    if (entry.listener == "cdn") {
      ++cdn_requests;
      EXPECT_FALSE(entry.had_authorization) << entry.target;
    } else {
      ++hub_requests;
      EXPECT_TRUE(entry.had_authorization) << entry.method << " " << entry.target;
    }
  }
  EXPECT_GE(hub_requests, 4u);
  EXPECT_GE(cdn_requests, 1u);
}

TEST_F(AccessTest, OfflineServesPublicContentAndRestrictedOnlyToUnexpiredGrants) {
  StartHubcache();
  const std::string model = "/org/model/resolve/main/config.json";
  const std::string gated = "/org/gated/resolve/main/config.json";
  ASSERT_EQ(Get(model).status, 200);
  ASSERT_EQ(Get(gated, Bearer("hf_approved")).status, 200);
  const std::string commit = Commit("org/model");
  const std::string tree = "/api/models/org/model/tree/" + commit + "?recursive=true&expand=false";
  const std::string tree_body = Get(tree).body;

  // Offline, with every ref past its TTL.
  StartHubcache({"--offline", "--set", "cache.ref_ttl=0s"});
  hub().ClearLog();
  auto public_file = Get(model);
  EXPECT_EQ(public_file.status, 200);
  EXPECT_EQ(public_file.body, Content("org/model", "config.json"));
  EXPECT_EQ(public_file.Header("x-cache"), "STALE");  // main's commit is from the table
  auto pinned = Get("/org/model/resolve/" + commit + "/config.json");
  EXPECT_EQ(pinned.Header("x-cache"), "HIT");
  auto listing = Get(tree);
  EXPECT_EQ(listing.status, 200);
  EXPECT_EQ(listing.body, tree_body);

  EXPECT_EQ(Get(gated, Bearer("hf_approved")).status, 200);
  for (const Headers& who : {Headers{}, Bearer("hf_user"), Bearer("hf_bogus")}) {
    auto refused = Get(gated, who);
    EXPECT_EQ(refused.status, 503);
    EXPECT_NE(refused.body, Content("org/gated", "config.json"));
    EXPECT_TRUE(nlohmann::json::parse(refused.body, nullptr, false).contains("error"));
  }
  auto uncached = Head("/org/model/resolve/main/model.safetensors");
  EXPECT_EQ(uncached.status, 503);
  EXPECT_FALSE(uncached.Header("x-error-message").empty());
  EXPECT_EQ(hub().RequestCount(), 0u);
}

TEST_F(AccessTest, OfflineGrantExtensionIsTheOperatorsChoice) {
  // Grants that expire at once: offline they count only with an extension.
  StartHubcache({"--set", "access.grant_ttl=0s"});
  const std::string gated = "/org/gated/resolve/main/config.json";
  ASSERT_EQ(Get(gated, Bearer("hf_approved")).status, 200);
  StartHubcache({"--offline", "--set", "access.grant_ttl=0s"});
  EXPECT_EQ(Get(gated, Bearer("hf_approved")).status, 503);
  StartHubcache({"--offline", "--set", "access.grant_ttl=0s", "--set",
                 "access.offline_grant_ttl=1h"});
  auto extended = Get(gated, Bearer("hf_approved"));
  EXPECT_EQ(extended.status, 200);
  EXPECT_EQ(extended.body, Content("org/gated", "config.json"));
  EXPECT_EQ(Get(gated).status, 503);
}

TEST_F(AccessTest, UnreachableHubGetsAPromptJsonErrorOrTheCachedAnswer) {
  StartHubcache();
  const std::string model = "/org/model/resolve/main/config.json";
  ASSERT_EQ(Get(model).status, 200);
  // A port nobody listens on.
  std::uint16_t closed = 0;
  {
    net::io_context ioc;
    net::ip::tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
    closed = acceptor.local_endpoint().port();
  }
  StartHubcache({"--upstream", "http://127.0.0.1:" + std::to_string(closed), "--set",
                 "cache.ref_ttl=0s"});
  const auto start = std::chrono::steady_clock::now();
  auto cached = Get(model);
  EXPECT_EQ(cached.status, 200);
  EXPECT_EQ(cached.Header("x-cache"), "STALE");
  EXPECT_EQ(cached.body, Content("org/model", "config.json"));
  auto missing = Head("/org/model/resolve/main/model.safetensors");
  EXPECT_TRUE(missing.status == 502 || missing.status == 503 || missing.status == 504)
      << missing.status;
  auto api = Get("/api/models/org/model/revision/main");
  EXPECT_TRUE(api.status == 502 || api.status == 503 || api.status == 504) << api.status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

}  // namespace
}  // namespace hubcache::testing
