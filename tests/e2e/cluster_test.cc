// The cluster end to end: real hubcache daemons on 127.0.0.2, .3, .4 with real
// libtorrent sessions, in front of one fake Hub (DESIGN.md "P2P", issue 16).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/stream_client.h"
#include "tests/support/files.h"

namespace hubcache::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

constexpr const char* kSecret = "the shared secret of this test cluster";
const std::string kBigPath = "/org/big/resolve/main/model.safetensors";

// True when `ip`:`port` can be bound now.
bool PortFree(const std::string& ip, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// A cluster port whose successor (the BitTorrent port) is free too.
std::uint16_t FreePortPair(const std::string& ip) {
  static std::mt19937 random(static_cast<unsigned>(::getpid()));
  for (;;) {
    const auto port = static_cast<std::uint16_t>(20000 + random() % 30000);
    if (PortFree(ip, port) && PortFree(ip, port + 1)) return port;
  }
}

struct Node {
  std::string ip;
  std::uint16_t cluster_port = 0;
  std::uint16_t port = 0;  // the client port
  fs::path cache_dir;
  std::unique_ptr<Subprocess> process;

  std::string cluster_address() const { return ip + ":" + std::to_string(cluster_port); }
};

class ClusterTest : public HubcacheTest {
 protected:
  void SetUp() override {
    HubcacheTest::SetUp();
    char pattern[] = "/tmp/hubcache-cluster-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    WriteFile(root_ / "secret", kSecret);
    WriteFile(root_ / "other-secret", "a different secret, not the cluster's");
    for (int i = 0; i < 3; ++i) {
      Node node;
      node.ip = "127.0.0." + std::to_string(i + 2);
      node.cluster_port = FreePortPair(node.ip);
      node.cache_dir = root_ / ("node" + std::to_string(i));
      nodes_.push_back(std::move(node));
    }
  }

  void TearDown() override {
    for (Node& node : nodes_) Stop(node);
    std::error_code ignored;
    fs::remove_all(root_, ignored);
    HubcacheTest::TearDown();
  }

  std::vector<std::string> Peers() const {
    std::vector<std::string> out;
    for (const Node& node : nodes_) out.push_back(node.cluster_address());
    return out;
  }

  void Start(Node& node, const std::string& secret_file = "secret",
             const std::vector<std::string>& extra = {},
             const std::map<std::string, std::string>& env = {}) {
    std::string peers;
    for (const std::string& p : Peers()) peers += (peers.empty() ? "" : ",") + p;
    std::vector<std::string> argv = {HUBCACHE_BINARY, "serve",
                                     "--listen", node.ip + ":0",
                                     "--cache-dir", node.cache_dir.string(),
                                     "--upstream", hub().url(),
                                     "--set", "server.threads=2",
                                     "--set", "upstream.max_retries=2",
                                     "--set", "cluster.listen=" + node.cluster_address(),
                                     "--set", "cluster.secret_file=" + (root_ / secret_file).string(),
                                     "--set", "cluster.health_interval=200ms",
                                     "--set", "cluster.dead_after=1s",
                                     "--set", "cluster.stall_timeout=5s"};
    if (!use_dns_) argv.insert(argv.end(), {"--set", "cluster.peers=" + peers});
    argv.insert(argv.end(), extra.begin(), extra.end());
    node.process = Subprocess::Start(argv, env);
    ASSERT_TRUE(node.process->WaitForStderr("hubcache_started", seconds(30)))
        << node.process->err();
    const std::string& err = node.process->err();
    const std::string needle = "listen=" + node.ip + ":";
    const std::size_t at = err.find(needle);
    ASSERT_NE(at, std::string::npos) << err;
    node.port = static_cast<std::uint16_t>(std::atoi(err.c_str() + at + needle.size()));
  }

  void Stop(Node& node) {
    if (!node.process) return;
    if (node.process->Running()) {
      node.process->Signal(SIGTERM);
      EXPECT_EQ(node.process->Wait(seconds(30)), 0) << node.process->err();
    } else if (!killed_.contains(node.ip)) {
      Drain(node);
      ADD_FAILURE() << "node " << node.ip << " died (status " << node.process->Wait(seconds(1)).value_or(-1)
                    << "):\n" << node.process->err();
    }
    node.process.reset();
  }

  // Reads what the node logged so far (its stderr pipe must not fill up).
  static void Drain(Node& node) {
    if (node.process) node.process->Drain();
  }
  void DrainAll() {
    for (Node& node : nodes_) Drain(node);
  }

  HttpResponse GetFrom(const Node& node, const std::string& target, const Headers& headers = {}) {
    auto response = HttpRequest(node.ip, node.port, "GET", target, headers, "");
    if (!response) {
      ADD_FAILURE() << "GET " << target << " from " << node.ip << ": no response";
      return {};
    }
    return *response;
  }

  // A gauge or counter from the node's /metrics (the first sample of `name`).
  double Metric(const Node& node, const std::string& sample) {
    const std::string body = GetFrom(node, "/metrics").body;
    const std::size_t at = body.find("\n" + sample + " ");
    if (at == std::string::npos) return -1;
    return std::atof(body.c_str() + at + sample.size() + 2);
  }

  // Waits until `predicate` holds, polling.
  template <class Predicate>
  bool WaitFor(Predicate predicate, milliseconds timeout = seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      DrainAll();
      if (predicate()) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return predicate();
  }

  void WaitForMembers(const std::vector<Node*>& nodes) {
    for (Node* node : nodes) {
      ASSERT_TRUE(WaitFor([&] {
        return Metric(*node, "hubcache_cluster_members_alive") == static_cast<double>(nodes.size());
      })) << node->process->err();
    }
  }

  // Waits until `node` holds a blob's .torrent and has told its leader.
  void WaitForAnnounced(const Node& node, double torrents) {
    ASSERT_TRUE(WaitFor([&] {
      return Metric(node, "hubcache_cluster_torrents") >= torrents &&
             Metric(node, "hubcache_cluster_announce_pending") == 0;
    })) << node.process->err();
  }

  fs::path BlobFile(const Node& node, const std::string& sha) {
    return node.cache_dir / "blobs" / "sha256" / sha.substr(0, 2) / sha;
  }

  std::string Sha(const std::string& repo, const std::string& path) {
    return hub().Etag("model", repo, "main", path);
  }

  fs::path root_;
  std::vector<Node> nodes_;
  std::set<std::string> killed_;  // nodes a test killed on purpose
  bool use_dns_ = false;          // membership from cluster.dns instead of cluster.peers
};

TEST_F(ClusterTest, ABlobOnOneNodeReachesTheOthersWithNoBytesFromTheHub) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");

  auto first = StreamGet(nodes_[0].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[0].ip);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.Header("x-cache"), "MISS");
  EXPECT_EQ(first.sha256, sha);
  ASSERT_EQ(hub().BodyBytesSent(sha), size);
  WaitForAnnounced(nodes_[0], 1);

  hub().ClearLog();
  for (Node* node : {&nodes_[1], &nodes_[2]}) {
    auto r = StreamGet(node->port, kBigPath, {}, seconds(120), UINT64_MAX, node->ip);
    EXPECT_EQ(r.status, 200) << node->process->err();
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.body_bytes, size);
    EXPECT_EQ(r.sha256, sha);
    EXPECT_EQ(r.Header("x-cache"), "PEER") << node->process->err();
    // Verified and committed: a second read is a hit, from this node's disk.
    auto again = GetFrom(*node, kBigPath);
    EXPECT_EQ(again.Header("x-cache"), "HIT");
  }
  EXPECT_EQ(hub().BodyBytesSent(sha), 0u) << "a node went to the Hub for bytes a peer had";
  EXPECT_GT(Metric(nodes_[1], "hubcache_cluster_bytes_total{direction=\"in\"}") +
                Metric(nodes_[2], "hubcache_cluster_bytes_total{direction=\"in\"}"),
            0);

  // Every holder built the same .torrent from its own pass over the bytes.
  const fs::path torrent = fs::path("p2p") / "torrents" / sha.substr(0, 2) / (sha + ".torrent");
  WaitForAnnounced(nodes_[1], 1);
  WaitForAnnounced(nodes_[2], 1);
  const std::string canonical = ReadFile(nodes_[0].cache_dir / torrent);
  ASSERT_FALSE(canonical.empty());
  EXPECT_EQ(ReadFile(nodes_[1].cache_dir / torrent), canonical);
  EXPECT_EQ(ReadFile(nodes_[2].cache_dir / torrent), canonical);
}

TEST_F(ClusterTest, ANodeWithAnotherSecretCannotJoinOrFetch) {
  Start(nodes_[0]);
  Start(nodes_[1]);
  Start(nodes_[2], "other-secret");
  WaitForMembers({&nodes_[0], &nodes_[1]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  auto first = StreamGet(nodes_[0].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[0].ip);
  ASSERT_EQ(first.status, 200);
  WaitForAnnounced(nodes_[0], 1);

  // The outsider sees nobody: it asks the Hub, as a node alone would.
  EXPECT_EQ(Metric(nodes_[2], "hubcache_cluster_members_alive"), 1);
  hub().ClearLog();
  auto outsider = StreamGet(nodes_[2].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[2].ip);
  EXPECT_EQ(outsider.status, 200);
  EXPECT_EQ(outsider.sha256, sha);
  EXPECT_EQ(outsider.Header("x-cache"), "MISS");
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
  // Both sides say why, in their logs.
  EXPECT_TRUE(nodes_[0].process->WaitForStderr("cluster_request_refused", seconds(5)));
  EXPECT_NE(nodes_[0].process->err().find("another cluster secret"), std::string::npos);
  EXPECT_TRUE(nodes_[2].process->WaitForStderr("cluster_peer_refused_us", seconds(5)));
  EXPECT_GT(Metric(nodes_[0], "hubcache_cluster_requests_refused_total"), 0);
  // Its requests are refused outright: nothing it announces counts.
  EXPECT_EQ(Metric(nodes_[1], "hubcache_cluster_members_alive"), 2);
}

TEST_F(ClusterTest, UnsignedAndMalformedClusterRequestsAreRefused) {
  Start(nodes_[0]);
  Node& node = nodes_[0];
  auto health = HttpRequest(node.ip, node.cluster_port, "GET", "/_cluster/v1/health", {}, "");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 401);
  EXPECT_NE(health->body.find("\"error\""), std::string::npos);
  auto forged = HttpRequest(node.ip, node.cluster_port, "GET", "/_cluster/v1/status",
                            {{"X-Hubcache-Node", "10.9.9.9:1"},
                             {"X-Hubcache-Time", "1"},
                             {"X-Hubcache-Signature", std::string(64, 'a')}},
                            "");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 401);
  // The client port knows nothing of the cluster API.
  EXPECT_EQ(GetFrom(node, "/_cluster/v1/health").status, 404);
}

TEST_F(ClusterTest, ARestrictedFileIsNotServedToARefusedTokenEvenWhenAPeerHoldsIt) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string target = "/org/gated/resolve/main/model.safetensors";
  auto approved = GetFrom(nodes_[0], target, {{"Authorization", "Bearer hf_approved"}});
  ASSERT_EQ(approved.status, 200);
  WaitForAnnounced(nodes_[0], 1);
  // Another node, a token the Hub refuses: the Hub's refusal, not the bytes.
  auto refused = GetFrom(nodes_[1], target, {{"Authorization", "Bearer hf_owner"}});
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body.find(approved.body.substr(0, 64)), std::string::npos);
  auto anonymous = GetFrom(nodes_[1], target);
  EXPECT_EQ(anonymous.status, 401);
  // The approved token on that node gets it, from the peer.
  auto peer = GetFrom(nodes_[1], target, {{"Authorization", "Bearer hf_approved"}});
  EXPECT_EQ(peer.status, 200);
  EXPECT_EQ(peer.body, approved.body);
  EXPECT_EQ(peer.Header("x-cache"), "PEER");
}

TEST_F(ClusterTest, ALyingHolderIsOutvotedAndTheBlobCompletesCorrectly) {
  Start(nodes_[0]);
  // The honest holder uploads slowly, so the liar surely serves pieces.
  Start(nodes_[1], "secret", {"--set", "cluster.upload_rate_limit=30MB"});
  Start(nodes_[2]);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  ASSERT_EQ(StreamGet(nodes_[0].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[0].ip).sha256, sha);
  ASSERT_EQ(StreamGet(nodes_[1].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[1].ip).sha256, sha);
  WaitForAnnounced(nodes_[0], 1);
  WaitForAnnounced(nodes_[1], 1);
  // Node 0's file rots on disk; its seed trusts its store and serves it.
  ASSERT_TRUE(fs::exists(BlobFile(nodes_[0], sha)));
  {
    std::fstream file(BlobFile(nodes_[0], sha), std::ios::in | std::ios::out | std::ios::binary);
    for (std::uint64_t at = 1000; at < (256u << 20); at += 4u << 20) {
      file.seekp(static_cast<std::streamoff>(at));
      file.put('\x5a');
    }
  }
  hub().ClearLog();
  auto r = StreamGet(nodes_[2].port, kBigPath, {}, seconds(180), UINT64_MAX, nodes_[2].ip);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.sha256, sha) << nodes_[2].process->err();
  EXPECT_GT(Metric(nodes_[2], "hubcache_cluster_hash_failures_total"), 0);
  // What the node stored is right.
  EXPECT_EQ(GetFrom(nodes_[2], kBigPath).Header("x-cache"), "HIT");
}

TEST_F(ClusterTest, AHolderKilledMidSwarmLeavesTheOthersToFinish) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  ASSERT_EQ(StreamGet(nodes_[0].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[0].ip).sha256, sha);
  WaitForAnnounced(nodes_[0], 1);
  hub().ClearLog();
  // Node 1 starts pulling from node 0, which dies a moment later.
  std::thread killer([&] {
    std::this_thread::sleep_for(milliseconds(300));
    killed_.insert(nodes_[0].ip);
    nodes_[0].process->Signal(SIGKILL);
  });
  auto r = StreamGet(nodes_[1].port, kBigPath, {}, seconds(180), UINT64_MAX, nodes_[1].ip);
  killer.join();
  nodes_[0].process->Wait(seconds(10));
  nodes_[0].process.reset();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete) << nodes_[1].process->err();
  EXPECT_EQ(r.body_bytes, size);
  EXPECT_EQ(r.sha256, sha);
  // Whatever the peer did not deliver came from the Hub, and only that.
  const auto from_peer =
      static_cast<std::uint64_t>(Metric(nodes_[1], "hubcache_cluster_piece_bytes_total"));
  EXPECT_LE(from_peer, size);
  EXPECT_LE(hub().BodyBytesSent(sha), size - from_peer);
  EXPECT_EQ(GetFrom(nodes_[1], kBigPath).Header("x-cache"), "HIT");
}

TEST_F(ClusterTest, EvictionOnAHolderWhileAnotherNodeDownloadsFromIt) {
  // Node 0 has room for the big blob and no more, and uploads slowly.
  Start(nodes_[0], "secret",
        {"--set", "store.max_bytes=270MB", "--set", "cluster.upload_rate_limit=40MB"});
  Start(nodes_[1]);
  WaitForMembers({&nodes_[0], &nodes_[1]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  ASSERT_EQ(StreamGet(nodes_[0].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[0].ip).sha256,
            sha);
  WaitForAnnounced(nodes_[0], 1);
  hub().ClearLog();
  // Once node 1 has written a verified piece from node 0 into its store,
  // node 0 stores another file and evicts the big blob to make room.
  std::thread evictor([&] {
    ASSERT_TRUE(WaitFor([&] { return Metric(nodes_[1], "hubcache_cluster_piece_bytes_total") > 0; },
                        seconds(60)));
    EXPECT_EQ(GetFrom(nodes_[0], "/org/model/resolve/main/model.safetensors").status, 200);
  });
  auto r = StreamGet(nodes_[1].port, kBigPath, {}, seconds(180), UINT64_MAX, nodes_[1].ip);
  evictor.join();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.sha256, sha) << nodes_[1].process->err();
  EXPECT_EQ(GetFrom(nodes_[1], kBigPath).Header("x-cache"), "HIT");
  EXPECT_GE(Metric(nodes_[0], "hubcache_evictions_total"), 1);
  EXPECT_FALSE(fs::exists(BlobFile(nodes_[0], sha)));
  // No verified byte is fetched twice: the Hub sent only what the pieces
  // node 1 got from node 0 before it let go did not cover.
  const auto from_peer =
      static_cast<std::uint64_t>(Metric(nodes_[1], "hubcache_cluster_piece_bytes_total"));
  EXPECT_GE(from_peer, 4u << 20);
  EXPECT_LT(from_peer, size);
  EXPECT_LE(hub().BodyBytesSent(sha), size - from_peer);
}

// Membership from a DNS name that resolves to every node, as a Kubernetes
// headless Service gives; the name comes from a private hosts file
// (nss_wrapper), the nodes share one cluster port on their own addresses.
TEST_F(ClusterTest, DnsMembershipFindsEveryNodeAndANodeThatLeavesDropsOut) {
  std::uint16_t port = 0;
  for (int attempt = 0; attempt < 100 && port == 0; ++attempt) {
    const std::uint16_t candidate = FreePortPair("127.0.0.2");
    if (PortFree("127.0.0.3", candidate) && PortFree("127.0.0.3", candidate + 1) &&
        PortFree("127.0.0.4", candidate) && PortFree("127.0.0.4", candidate + 1)) {
      port = candidate;
    }
  }
  ASSERT_NE(port, 0);
  WriteFile(root_ / "hosts",
            "127.0.0.2 hubcache-nodes\n127.0.0.3 hubcache-nodes\n127.0.0.4 hubcache-nodes\n");
  const std::map<std::string, std::string> env = {
      {"NSS_WRAPPER_HOSTS", (root_ / "hosts").string()},
      {"LD_PRELOAD", "libnss_wrapper.so"},
      {"NSS_WRAPPER_DISABLE_DEEPBIND", "1"},  // RTLD_DEEPBIND breaks the sanitizers
      // The sanitizer runtime then is not first in the library list; fine here.
      {"ASAN_OPTIONS", "verify_asan_link_order=0"}};
  use_dns_ = true;
  for (Node& node : nodes_) {
    node.cluster_port = port;
    Start(node, "secret",
          {"--set", "cluster.dns=hubcache-nodes:" + std::to_string(port), "--set",
           "cluster.dns_interval=1s"},
          env);
  }
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/model", "model.safetensors");
  const std::string target = "/org/model/resolve/main/model.safetensors";
  ASSERT_EQ(GetFrom(nodes_[0], target).status, 200);
  WaitForAnnounced(nodes_[0], 1);
  hub().ClearLog();
  auto peer = GetFrom(nodes_[1], target);
  EXPECT_EQ(peer.status, 200);
  EXPECT_EQ(peer.Header("x-cache"), "PEER");
  EXPECT_EQ(hub().BodyBytesSent(sha), 0u);
  // A node that leaves is out of every decision within seconds.
  Stop(nodes_[2]);
  const auto stopped = std::chrono::steady_clock::now();
  for (Node* node : {&nodes_[0], &nodes_[1]}) {
    EXPECT_TRUE(WaitFor([&] { return Metric(*node, "hubcache_cluster_members_alive") == 2; },
                        seconds(10)));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, seconds(5));
}

}  // namespace
}  // namespace hubcache::testing
