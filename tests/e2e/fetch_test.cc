// Misses end to end: coalescing, streaming, and what a client sees when the
// upstream misbehaves (HUB_PROTOCOL.md §8.2, §9 checks 17, 18, 32).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/stream_client.h"

namespace hubcache::testing {
namespace {

using std::chrono::seconds;

const std::string kWeights = "/org/model/resolve/main/model.safetensors";

class FetchTest : public HubcacheTest {
 protected:
  std::string Sha(const std::string& repo, const std::string& path) {
    return hub().Etag("model", repo, "main", path);
  }
};

TEST_F(FetchTest, ThirtyTwoClientsOfOneUncachedBlobCostOneUpstreamCopy) {
  StartHubcache();
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  std::vector<StreamResult> results(32);
  std::vector<std::thread> clients;
  for (auto& result : results) {
    clients.emplace_back([this, &result] {
      result = StreamGet(port(), "/org/big/resolve/main/model.safetensors");
    });
  }
  for (auto& t : clients) t.join();
  int misses = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.body_bytes, size);
    EXPECT_EQ(r.sha256, sha);
    misses += r.Header("x-cache") == "MISS";
  }
  EXPECT_EQ(misses, 1);
  EXPECT_EQ(hub().BodyBytesSent(sha), size);  // exactly one copy from upstream
}

TEST_F(FetchTest, HeadersArriveAtOnceAndBytesFlowWhileASlowDownloadRuns) {
  StartHubcache();
  hub().SetBandwidth(0, 20'000'000);  // 256 MiB would take 13 s
  const auto start = std::chrono::steady_clock::now();
  auto r = StreamGet(port(), "/org/big/resolve/main/model.safetensors", {}, seconds(30),
                     4 << 20);
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(r.head_after, seconds(1));
  EXPECT_GE(r.body_bytes, 4u << 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST_F(FetchTest, UpstreamDroppedMidBodyIsResumedAndTheClientGetsEveryByte) {
  StartHubcache();
  const std::string sha = Sha("org/model", "model.safetensors");
  hub().AddFault({.path_contains = sha, .drop_after_bytes = 1 << 20, .drop_times = 2});
  auto r = StreamGet(port(), kWeights);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.sha256, sha);
  EXPECT_GE(hub().RequestCount(sha), 3u);
}

TEST_F(FetchTest, CorruptUpstreamBytesAreNeverCachedAndTheClientSeesACutTransfer) {
  StartHubcache();
  const std::string sha = Sha("org/model", "model.safetensors");
  hub().AddFault({.path_contains = sha, .flip_byte = true, .flip_offset = 4096});
  auto r = StreamGet(port(), kWeights);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.complete);
  EXPECT_FALSE(r.reset);  // FIN: the client resumes with a Range request
  EXPECT_LT(r.body_bytes, r.content_length);

  auto metrics = Get("/metrics");
  EXPECT_NE(metrics.body.find("hubcache_digest_mismatches_total 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("hubcache_store_blobs 0"), std::string::npos);
  // The fault is spent: the next request downloads again and succeeds.
  auto again = StreamGet(port(), kWeights);
  EXPECT_TRUE(again.complete);
  EXPECT_EQ(again.sha256, sha);
  EXPECT_EQ(again.Header("x-cache"), "MISS");
}

TEST_F(FetchTest, ShortUpstreamBodyNeverBecomesAShortCleanAnswer) {
  StartHubcache({"--set", "upstream.max_retries=0"});
  const std::string sha = Sha("org/model", "model.safetensors");
  hub().AddFault({.path_contains = sha, .drop_times = -1, .short_body = true});
  auto r = StreamGet(port(), kWeights);
  EXPECT_FALSE(r.complete);
  EXPECT_FALSE(r.reset);
  hub().ClearFaults();
  auto again = StreamGet(port(), kWeights);
  EXPECT_TRUE(again.complete);
  EXPECT_EQ(again.sha256, sha);
}

TEST_F(FetchTest, UpstreamErrorBurstsAndStallsAreRetried) {
  StartHubcache({"--set", "upstream.read_timeout=1s"});
  hub().AddFault({.path_contains = "/resolve/main/config.json", .fail_first = 2,
                  .fail_status = 503});
  auto config = Get("/org/model/resolve/main/config.json");
  EXPECT_EQ(config.status, 200);
  EXPECT_EQ(config.body, Content("org/model", "config.json"));

  const std::string sha = Sha("org/model", "model.safetensors");
  hub().AddFault({.path_contains = sha, .stall = true});
  const auto start = std::chrono::steady_clock::now();
  auto r = StreamGet(port(), kWeights);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.sha256, sha);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

// A request that joins a download which then fails before its first byte
// starts a download of its own, rather than getting a 200 that is cut (or
// the soak's 503, when the failed download's file was gone).
TEST_F(FetchTest, ARequestThatJoinedADownloadThatFailedStartsItsOwn) {
  StartHubcache({"--set", "upstream.max_retries=0", "--set", "upstream.connections=1"});
  const std::string sha = Sha("org/model", "model.safetensors");
  hub().AddFault({.path_contains = sha, .fail_first = 1, .fail_status = 503,
                  .fail_delay = std::chrono::milliseconds(2000)});
  StreamResult first;
  std::thread starter([&] { first = StreamGet(port(), kWeights); });
  // The second request once the first one's download is in flight.
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (Get("/metrics").body.find("hubcache_fetches_in_flight 1") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto second = StreamGet(port(), kWeights);
  starter.join();
  EXPECT_GE(first.status, 500u) << "the starter gets the download's error";
  EXPECT_EQ(second.status, 200u) << second.Header("x-error-message");
  EXPECT_TRUE(second.complete);
  EXPECT_EQ(second.sha256, sha);
  auto again = Head(kWeights);
  EXPECT_EQ(again.Header("x-cache"), "HIT") << "the second download was stored";
}

TEST_F(FetchTest, ABlobTheStoreHasNoRoomForIsServedStraightThroughUncached) {
  StartHubcache({"--set", "store.max_bytes=1MiB"});
  // One keep-alive connection: each answer is counted before the next request
  // is read, so /metrics sees both.
  auto conn = Connect();
  ASSERT_TRUE(conn);
  auto r = conn->Request("GET", kWeights);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, Content("org/model", "model.safetensors"));
  EXPECT_EQ(r->Header("x-cache"), "MISS");
  auto ranged = conn->Request("GET", kWeights, {{"Range", "bytes=10-19"}});
  ASSERT_TRUE(ranged);
  EXPECT_EQ(ranged->status, 206);
  EXPECT_EQ(ranged->body, Content("org/model", "model.safetensors").substr(10, 10));
  auto metrics_answer = conn->Request("GET", "/metrics");
  ASSERT_TRUE(metrics_answer);
  const std::string metrics = metrics_answer->body;
  EXPECT_NE(metrics.find("hubcache_store_blobs 0"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("hubcache_served_bytes_total{cache=\"PASS\"} " +
                         std::to_string(r->body.size() + 10)),
            std::string::npos)
      << metrics;
  // Small files still fit and are cached.
  ASSERT_EQ(Get("/org/model/resolve/main/config.json").status, 200);
  EXPECT_EQ(Get("/org/model/resolve/main/config.json").Header("x-cache"), "HIT");
}

TEST_F(FetchTest, RangeOnAMissIsServedFromTheGrowingDownload) {
  StartHubcache();
  const std::string expected = Content("org/model", "model.safetensors");
  auto r = Get(kWeights, {{"Range", "bytes=1000000-1000099"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, expected.substr(1000000, 100));
  EXPECT_EQ(r.Header("x-cache"), "MISS");
}

// By default a range of a blob still downloading gets every byte but its
// last as soon as they are on disk, and the last once the whole blob is
// verified (proxy.verified_ranges): wrong bytes can only ever end cut.
TEST_F(FetchTest, ARangeOfADownloadInProgressEndsOnlyOnceTheBlobIsVerified) {
  StartHubcache();
  hub().SetBandwidth(0, 1'250'000);  // the 5 MB blob takes about 4 s
  const std::string expected = Content("org/model", "model.safetensors");
  const auto start = std::chrono::steady_clock::now();
  auto first = StreamGet(port(), kWeights, {{"Range", "bytes=0-99"}}, seconds(30), 99);
  EXPECT_EQ(first.status, 206);
  EXPECT_EQ(first.body_bytes, 99u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));
  auto whole = Get(kWeights, {{"Range", "bytes=0-99"}});
  EXPECT_EQ(whole.status, 206);
  EXPECT_EQ(whole.body, expected.substr(0, 100));
  EXPECT_GT(std::chrono::steady_clock::now() - start, seconds(3));
}

TEST_F(FetchTest, RangeAheadIsServedFromItsOwnChunkBeforeThePrefixArrives) {
  // 8 parallel chunks of 8 MiB at 5 MB/s each: chunk 7 starts at once but
  // the prefix before it takes over a second. Ranges unverified (the
  // default waits for the whole blob's digest).
  StartHubcache({"--set", "upstream.connections=8", "--set", "upstream.chunk_bytes=8MiB",
                 "--set", "proxy.verified_ranges=false"});
  hub().SetBandwidth(5'000'000, 0);
  const std::uint64_t at = 7 * (8u << 20) + 1000;
  const auto start = std::chrono::steady_clock::now();
  auto r = Get("/org/big/resolve/main/model.safetensors",
               {{"Range", "bytes=" + std::to_string(at) + "-" + std::to_string(at + 99)}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, hub().FileContent("model", "org/big", "main", "model.safetensors", at, 100));
  // The 8 MiB before it need 1.7 s at this rate.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
  // Answered while the download still runs.
  EXPECT_NE(Get("/metrics").body.find("hubcache_fetches_in_flight 1"), std::string::npos);
}

}  // namespace
}  // namespace hubcache::testing
