// The token matrix (issue 18 §5), shared by one node's test
// (tests/e2e/token_matrix_test.cc) and the cluster's (cluster_test.cc): the
// tokens, what the Hub answers each of them for a gated, a private and a
// public repo's config.json before and after it changes its mind, and the
// check of one cell.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <utility>
#include <string>
#include <vector>

#include "tests/fakehub/fake_hub.h"
#include "tests/support/http_client.h"

namespace hubcache::testing {

inline const std::string kInvalidToken = "hf_NotAToken0123456789";
inline const std::vector<std::string> kMatrixTokens = {"", kInvalidToken, "hf_user", "hf_approved",
                                                       "hf_owner"};

struct TokenCell {
  std::string repo;
  std::string token;
  unsigned status;
  std::string code;  // X-Error-Code
};

// What each token gets while the files are cached by those who may read them.
inline std::vector<TokenCell> MatrixBefore() {
  return {
      {"org/gated", "", 401, "GatedRepo"},
      {"org/gated", kInvalidToken, 401, ""},
      {"org/gated", "hf_user", 403, "GatedRepo"},
      {"org/gated", "hf_owner", 403, "GatedRepo"},
      {"org/gated", "hf_approved", 200, ""},
      {"org/private", "", 401, "RepoNotFound"},
      {"org/private", kInvalidToken, 401, ""},
      {"org/private", "hf_user", 404, "RepoNotFound"},
      {"org/private", "hf_approved", 404, "RepoNotFound"},
      {"org/private", "hf_owner", 200, ""},
      {"org/model", "", 200, ""},
      // The Hub refuses an invalid token everywhere; hubcache serves a cached
      // public file without asking (README "Who may read what": a known
      // difference, nothing restricted is ever served this way).
      {"org/model", kInvalidToken, 200, ""},
      {"org/model", "hf_user", 200, ""},
  };
}

// The Hub changes its mind: the approval revoked, the public repo turned
// private, the private one deleted.
inline void ChangeTheHubsMind(fakehub::FakeHub& hub) {
  hub.SetTokenAccess("model", "org/gated", "hf_approved", false);
  hub.SetPrivate("model", "org/model", true);
  hub.DeleteRepo("model", "org/private");
}

// What each token gets after that, once hubcache's grants and public facts
// have expired.
inline std::vector<TokenCell> MatrixAfter() {
  return {
      {"org/gated", "hf_approved", 403, "GatedRepo"},
      {"org/gated", "", 401, "GatedRepo"},
      {"org/model", "", 401, "RepoNotFound"},
      {"org/model", "hf_user", 404, "RepoNotFound"},
      {"org/model", kInvalidToken, 401, ""},
      {"org/private", "hf_owner", 404, "RepoNotFound"},
      {"org/private", "", 401, "RepoNotFound"},
  };
}

using Requester = std::function<HttpResponse(const std::string& method, const std::string& target,
                                             const Headers& headers)>;

// HEAD and GET of the cell's config.json through `request`: the status, the
// error code, on 200 the bytes (`content`), on a 5xx a JSON error naming the
// cause. Every answer's head and body are added to `transcript`.
inline void ExpectCell(const TokenCell& cell, const Requester& request, const std::string& content,
                       std::string& transcript) {
  SCOPED_TRACE(cell.repo + " with " + (cell.token.empty() ? "(none)" : cell.token));
  Headers headers;
  if (!cell.token.empty()) headers.emplace_back("Authorization", "Bearer " + cell.token);
  const std::string target = "/" + cell.repo + "/resolve/main/config.json";
  for (const std::string method : {"HEAD", "GET"}) {
    auto r = request(method, target, headers);
    EXPECT_EQ(r.status, cell.status) << method << " " << r.body;
    EXPECT_EQ(r.Header("x-error-code"), cell.code) << method;
    if (cell.status == 200 && method == "GET") {
      EXPECT_TRUE(r.body == content);
    }
    if (cell.status != 200) {
      EXPECT_TRUE(r.body != content) << method;
    }
    if (cell.status >= 500) {
      EXPECT_NE(r.Header("x-error-message"), "") << method;
      if (method == "GET") {
        EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
      }
    }
    transcript += r.body;
    for (const auto& [name, value] : r.headers) transcript += name + ": " + value + "\n";
  }
}

// Every file under `dir`, concatenated (to search it for tokens).
inline std::string EveryFileUnder(const std::filesystem::path& dir) {
  std::string out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

// No token of the matrix appears in any of `places` (where, what was there).
// `log` must be a debug log: it has to show an access refusal.
inline void ExpectNoTokenIn(const std::vector<std::pair<std::string, std::string>>& places,
                            const std::string& log) {
  for (const std::string& token : kMatrixTokens) {
    if (token.empty()) continue;
    SCOPED_TRACE(token);
    for (const auto& [where, text] : places) EXPECT_EQ(text.find(token), std::string::npos) << where;
    EXPECT_EQ(log.find(token), std::string::npos) << "in a debug log";
  }
  EXPECT_NE(log.find("access_refused"), std::string::npos) << "the log was not at debug level";
}

}  // namespace hubcache::testing
