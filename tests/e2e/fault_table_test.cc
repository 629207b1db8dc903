// The upstream fault table (issue 18 §3): every fault the fake Hub can
// inject, always on, against every kind of request a client makes (a HEAD of
// an LFS file, its whole GET, a ranged GET, an API listing), each on a fresh
// hubcache and cache directory. Each cell says what the client sees; in none
// may wrong bytes arrive as a complete answer, and after each the daemon
// stops cleanly and `hubcache verify` finds the store sound. Then the fault
// is lifted and the same request gets the exact answer (nothing bad was
// kept). The table is printed as Markdown (README "Reliability").
//
// Also: an upstream nobody listens on, a name that does not resolve, and a
// TLS certificate from an unknown CA or for another name: refused with a
// clean error, never retried without verification.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "store/digest.h"
#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/stream_client.h"

namespace hubcache::testing {
namespace {

using Json = nlohmann::json;
using std::chrono::seconds;

const std::string kRepo = "org/model";
const std::string kFile = "model.safetensors";
const std::string kTarget = "/org/model/resolve/main/model.safetensors";
const std::string kApi = "/api/models/org/model/tree/main?recursive=true";
constexpr std::uint64_t kRangeFirst = 1000;
constexpr std::uint64_t kRangeLast = 299'999;

std::string Sha256(std::string_view bytes) {
  store::Hasher hasher(store::DigestKind::kSha256, bytes.size());
  hasher.Update(bytes);
  return hasher.Finish().Hex();
}

enum class Kind { kHead, kGetWhole, kGetRange, kApi };
constexpr Kind kKinds[] = {Kind::kHead, Kind::kGetWhole, Kind::kGetRange, Kind::kApi};
std::string KindName(Kind kind) {
  switch (kind) {
    case Kind::kHead: return "HEAD";
    case Kind::kGetWhole: return "GET whole";
    case Kind::kGetRange: return "GET range";
    case Kind::kApi: return "API";
  }
  return "?";
}

struct Row {
  std::string name;
  fakehub::Fault fault;
};

// The faults, each on every matching request until lifted.
std::vector<Row> Rows() {
  return {
      {"drop mid-body", {.path_contains = "", .drop_after_bytes = 100'000, .drop_times = -1}},
      {"5xx", {.path_contains = "", .fail_first = -1, .fail_status = 503}},
      {"stall", {.path_contains = "", .drop_times = -1, .stall = true}},
      {"flipped byte",
       {.path_contains = "", .drop_times = -1, .flip_byte = true, .flip_offset = 200'000}},
      {"short body", {.path_contains = "", .drop_times = -1, .short_body = true}},
      {"CDN ignores Range", {.path_contains = "", .drop_times = -1, .ignore_range = true}},
      {"gzip on a 206", {.path_contains = "", .drop_times = -1, .gzip = true}},
      {"Content-Length too long",
       {.path_contains = "", .drop_times = -1, .length_delta = 7}},
      {"Content-Length too short",
       {.path_contains = "", .drop_times = -1, .length_delta = -7}},
  };
}

class FaultTableTest : public HubcacheTest {
 protected:
  void SetUp() override {
    HubcacheTest::SetUp();
    content_ = Content(kRepo, kFile);
    sha_ = hub().Etag("model", kRepo, "main", kFile);
    range_sha_ = Sha256(std::string_view(content_).substr(kRangeFirst, kRangeLast - kRangeFirst + 1));
  }

  void Fresh() {
    StopHubcache();
    std::error_code ignored;
    std::filesystem::remove_all(cache_dir(), ignored);
    StartHubcache({"--set", "upstream.read_timeout=1s", "--set", "upstream.max_retries=1"});
  }

  // What the client sees, in a word, checking that nothing wrong is taken
  // for complete: "exact", "cut" (a 2xx whose body ends early: the client
  // knows and resumes), or the status of a clean error.
  std::string Ask(Kind kind) {
    switch (kind) {
      case Kind::kHead: {
        auto r = Head(kTarget);
        if (r.status != 200) return Error(r.status, r.body);
        EXPECT_EQ(r.Header("x-linked-size"), std::to_string(content_.size()));
        EXPECT_EQ(r.Header("x-linked-etag"), "\"" + sha_ + "\"");
        return "exact";
      }
      case Kind::kGetWhole:
      case Kind::kGetRange: {
        const bool range = kind == Kind::kGetRange;
        Headers headers;
        if (range) headers.emplace_back("Range", fmt::format("bytes={}-{}", kRangeFirst, kRangeLast));
        auto r = StreamGet(port(), kTarget, headers, seconds(60));
        if (r.status >= 300) return Error(r.status, "");
        EXPECT_EQ(r.status, range ? 206u : 200u);
        const std::uint64_t want = range ? kRangeLast - kRangeFirst + 1 : content_.size();
        // Never more, never other bytes under the length announced.
        EXPECT_EQ(r.content_length, want);
        if (r.complete) {
          EXPECT_EQ(r.sha256, range ? range_sha_ : sha_) << "wrong bytes delivered as complete";
          return r.sha256 == (range ? range_sha_ : sha_) ? "exact" : "WRONG";
        }
        EXPECT_LT(r.body_bytes, r.content_length);
        return r.reset ? "cut (reset)" : "cut";
      }
      case Kind::kApi: {
        auto r = Get(kApi);
        if (r.status != 200) return Error(r.status, r.body);
        EXPECT_EQ(r.body, api_body_) << "a different listing than the Hub's";
        return r.body == api_body_ ? "exact" : "WRONG";
      }
    }
    return "?";
  }

  // A clean error: JSON with a message, from hubcache or relayed.
  static std::string Error(unsigned status, const std::string& body) {
    if (!body.empty()) {
      const Json j = Json::parse(body, nullptr, false);
      EXPECT_TRUE(j.is_object() && j.contains("error")) << status << " " << body;
    }
    return std::to_string(status);
  }

  // The store holds nothing wrong: `hubcache verify` with the daemon stopped.
  void ExpectStoreSound(const std::string& where) {
    StopHubcache();
    auto verify = Verify();
    EXPECT_EQ(verify.exit_code, 0) << where << "\n" << verify.out << verify.err;
  }

  std::string content_;
  std::string sha_;
  std::string range_sha_;
  std::string api_body_;
};

TEST_F(FaultTableTest, EveryFaultTimesEveryRequestKind) {
  // The listing as a healthy Hub gives it through hubcache.
  Fresh();
  auto api = Get(kApi);
  ASSERT_EQ(api.status, 200);
  api_body_ = api.body;

  // What each cell must show. A fault on the body of file content leaves
  // HEAD and the API alone (they carry no file bytes); a fault the client
  // cannot be shielded from once its 2xx head is out ends as a cut the
  // client resumes; before any byte went out it is a clean 502/504.
  const std::map<std::string, std::vector<std::string>> expected = {
      {"drop mid-body", {"exact", "exact", "exact", "exact"}},
      {"5xx", {"503", "503", "503", "503"}},
      {"stall", {"exact", "cut", "cut", "exact"}},
      {"flipped byte", {"exact", "cut", "cut", "exact"}},
      {"short body", {"exact", "cut", "cut", "exact"}},
      {"CDN ignores Range", {"exact", "exact", "exact", "exact"}},
      {"gzip on a 206", {"exact", "502", "502", "exact"}},
      {"Content-Length too long", {"exact", "cut", "cut", "exact"}},
      {"Content-Length too short", {"exact", "cut", "cut", "exact"}},
  };

  std::string table = "| upstream fault | HEAD | GET whole | GET range | API |\n|---|---|---|---|---|\n";
  for (const Row& row : Rows()) {
    std::vector<std::string> seen;
    for (Kind kind : kKinds) {
      SCOPED_TRACE(row.name + " × " + KindName(kind));
      Fresh();
      hub().ClearFaults();
      hub().AddFault(row.fault);
      seen.push_back(Ask(kind));
      // Lifted: the same request now gets exactly what the Hub has.
      hub().ClearFaults();
      EXPECT_EQ(Ask(kind), "exact") << "after the fault was lifted";
      ExpectStoreSound(row.name + " × " + KindName(kind));
    }
    table += fmt::format("| {} | {} |\n", row.name, fmt::join(seen, " | "));
    EXPECT_EQ(seen, expected.at(row.name)) << row.name;
  }
  std::fputs(table.c_str(), stdout);
}

// The upstream cannot be reached at all, or not safely: every kind of
// request gets a clean JSON error naming the cause, quickly, and nothing is
// stored. Then the same daemon's answers against a healthy TLS Hub, as a
// control: the refusals come from the checks, not from the setup.
TEST_F(FaultTableTest, AnUpstreamOutOfReachOrUnverifiableGetsACleanErrorForEveryKind) {
  fakehub::Options tls_options;
  tls_options.tls = true;
  auto tls_hub = fakehub::FakeHub::Start(tls_options);
  const std::string port = std::to_string(tls_hub->port());
  struct Case {
    std::string name;
    std::vector<std::string> flags;
    unsigned status;
    std::string cause;  // in every error message
  };
  const std::vector<Case> cases = {
      {"nothing listens", {"--upstream", "http://127.0.0.1:1"}, 502, "Connection refused"},
      {"the name does not resolve", {"--upstream", "http://hub.invalid"}, 502, "not found"},
      {"TLS, unknown CA", {"--upstream", "https://127.0.0.1:" + port}, 502,
       "certificate verify failed"},
      {"TLS, certificate for another name",
       {"--upstream", "https://127.1:" + port, "--set", "upstream.ca_file=" + tls_hub->ca_file()},
       502, "certificate verify failed"},
  };
  std::string table = "| upstream | HEAD | GET whole | GET range | API |\n|---|---|---|---|---|\n";
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    StopHubcache();
    std::error_code ignored;
    std::filesystem::remove_all(cache_dir(), ignored);
    std::vector<std::string> flags = c.flags;
    flags.insert(flags.end(), {"--set", "upstream.max_retries=1", "--set", "upstream.connect_timeout=2s"});
    StartHubcache(flags);
    std::vector<std::string> seen;
    const auto start = std::chrono::steady_clock::now();
    for (Kind kind : kKinds) seen.push_back(Ask(kind));
    EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(30));
    for (const std::string& outcome : seen) EXPECT_EQ(outcome, std::to_string(c.status));
    // Each answer says why, the same for every kind of request.
    EXPECT_NE(Head(kTarget).Header("x-error-message").find(c.cause), std::string::npos);
    EXPECT_NE(Get(kApi).body.find(c.cause), std::string::npos);
    EXPECT_NE(Get(kTarget).body.find(c.cause), std::string::npos);
    table += fmt::format("| {} | {} |\n", c.name, fmt::join(seen, " | "));
    // No request ever reached the TLS Hub: no retry without verification.
    EXPECT_EQ(tls_hub->RequestCount(), 0u);
    ExpectStoreSound(c.name);
  }
  // Control: the same TLS Hub under the name its certificate carries.
  StopHubcache();
  std::error_code ignored;
  std::filesystem::remove_all(cache_dir(), ignored);
  StartHubcache({"--upstream", "https://localhost:" + port, "--set",
                 "upstream.ca_file=" + tls_hub->ca_file()});
  auto head = Head(kTarget);
  EXPECT_EQ(head.status, 200);
  EXPECT_GT(tls_hub->RequestCount(), 0u);
  std::fputs(table.c_str(), stdout);
}

}  // namespace
}  // namespace hubcache::testing
