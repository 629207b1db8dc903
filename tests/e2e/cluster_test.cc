// The cluster end to end: real hubcache daemons on 127.0.0.2, .3, .4 with real
// libtorrent sessions, in front of one fake Hub (DESIGN.md "P2P", issue 16).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/secret.h"
#include "p2p/cluster_auth.h"
#include "p2p/membership.h"
#include "store/digest.h"
#include "tests/e2e/hubcache_fixture.h"
#include "tests/fakehub/content.h"
#include "tests/e2e/stream_client.h"
#include "tests/e2e/token_matrix.h"
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
    // Node 0 leads the big blob: a test that fetches it there first gets it
    // from the Hub on node 0, and the others from node 0 over BitTorrent
    // (a node that does not lead a cold blob streams it from its leader).
    std::swap(nodes_[0], nodes_[LeaderIndex(Sha("org/big", "model.safetensors"))]);
  }

  // The index of the node that leads `sha` while every node is live.
  int LeaderIndex(const std::string& sha) const {
    const auto digest = store::Digest::Parse(store::DigestKind::kSha256, sha);
    EXPECT_TRUE(digest.has_value()) << sha;
    int best = 0;
    for (int i = 1; i < static_cast<int>(nodes_.size()); ++i) {
      const auto score = p2p::RendezvousScore(*digest, nodes_[i].cluster_address());
      const auto top = p2p::RendezvousScore(*digest, nodes_[best].cluster_address());
      if (score > top || (score == top && nodes_[i].cluster_address() < nodes_[best].cluster_address())) {
        best = i;
      }
    }
    return best;
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

  // Clients asking each of `nodes` for the big blob at once; join the
  // threads, then read `results` (one per node, in order).
  std::vector<std::thread> GetBigOn(const std::vector<Node*>& nodes,
                                    std::vector<StreamResult>& results) {
    results.assign(nodes.size(), StreamResult());
    std::vector<std::thread> clients;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      clients.emplace_back([node = nodes[i], &results, i] {
        results[i] = StreamGet(node->port, kBigPath, {}, seconds(180), UINT64_MAX, node->ip);
      });
    }
    return clients;
  }

  // A request to `node`'s cluster port, signed as node `from` would.
  std::optional<HttpResponse> SignedRequest(const Node& node, const std::string& method,
                                            const std::string& target, const std::string& body,
                                            const std::string& from = "127.0.0.9:1") {
    const p2p::ClusterKey key{Secret(std::string(kSecret))};
    const auto now = std::chrono::duration_cast<seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const p2p::SignedHeaders auth = key.Sign(method, target, body, from, now);
    return HttpRequest(node.ip, node.cluster_port, method, target,
                       {{"X-Hubcache-Node", auth.node},
                        {"X-Hubcache-Time", auth.time},
                        {"X-Hubcache-Signature", auth.signature}},
                       body);
  }

  // `hubcache prefetch args...` with `node`'s configuration.
  RunResult PrefetchOn(const Node& node, std::vector<std::string> args) {
    std::string peers;
    for (const std::string& p : Peers()) peers += (peers.empty() ? "" : ",") + p;
    args.insert(args.begin(), {HUBCACHE_BINARY, "prefetch"});
    args.insert(args.end(), {"--cache-dir", node.cache_dir.string(),
                             "--upstream", hub().url(),
                             "--set", "cluster.listen=" + node.cluster_address(),
                             "--set", "cluster.secret_file=" + (root_ / "secret").string(),
                             "--set", "cluster.peers=" + peers});
    return testing::Run(args, {}, std::chrono::minutes(3));
  }

  fs::path BlobFile(const Node& node, const std::string& sha) {
    return node.cache_dir / "blobs" / "sha256" / sha.substr(0, 2) / sha;
  }

  std::string Sha(const std::string& repo, const std::string& path) const {
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

TEST_F(ClusterTest, AColdBlobAskedOfEveryNodeAtOnceComesFromTheHubOnce) {
  for (Node& node : nodes_) Start(node, "secret", {"--set", "status.enabled=true"});
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  hub().SetBandwidth(0, 40'000'000);  // about 7 s for the whole blob
  hub().ClearLog();
  // Every node's client asks at once; node 0 leads the blob.
  const auto start = std::chrono::steady_clock::now();
  std::vector<StreamResult> results(nodes_.size());
  std::vector<std::chrono::steady_clock::duration> took(nodes_.size());
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    clients.emplace_back([&, i] {
      results[i] = StreamGet(nodes_[i].port, kBigPath, {}, seconds(120), UINT64_MAX, nodes_[i].ip);
      took[i] = std::chrono::steady_clock::now() - start;
    });
  }
  // Meanwhile each node's status page names where its download comes from.
  std::vector<std::set<std::string>> sources(nodes_.size());
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const auto downloads = nlohmann::json::parse(
            GetFrom(nodes_[i], "/_hubcache/api/downloads").body, nullptr, false);
        if (!downloads.is_object()) continue;
        for (const auto& d : downloads["downloads"]) sources[i].insert(d.value("source", "?"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  for (auto& client : clients) client.join();
  done = true;
  watcher.join();
  EXPECT_EQ(sources[0], std::set<std::string>{"hub"});
  for (std::size_t i = 1; i < nodes_.size(); ++i) {
    EXPECT_EQ(sources[i], std::set<std::string>{"leader"}) << i;
  }
  // The status page puts the streamed bytes on the members that moved them.
  auto traffic = [&](const Node& of, const Node& with, const char* way) {
    const auto status =
        nlohmann::json::parse(GetFrom(of, "/_hubcache/api/cluster").body, nullptr, false);
    for (const auto& member : status["members"]) {
      if (member["address"] == with.cluster_address()) return member.value(way, std::uint64_t{0});
    }
    ADD_FAILURE() << with.cluster_address() << " is not a member seen by " << of.ip;
    return std::uint64_t{0};
  };
  for (std::size_t i = 1; i < nodes_.size(); ++i) {
    EXPECT_EQ(traffic(nodes_[i], nodes_[0], "bytes_in"), size) << i;
    EXPECT_EQ(traffic(nodes_[0], nodes_[i], "bytes_out"), size) << i;
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {

    EXPECT_EQ(results[i].status, 200) << nodes_[i].process->err();
    EXPECT_TRUE(results[i].complete) << i;
    EXPECT_EQ(results[i].sha256, sha) << i;
  }
  // One copy from the Hub for the whole cluster.
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
  // The leader's client started its fetch, or joined the one a follower's
  // ask started a moment before.
  const std::string leader_cache = results[0].Header("x-cache");
  EXPECT_TRUE(leader_cache == "MISS" || leader_cache == "COALESCED") << leader_cache;
  for (std::size_t i = 1; i < nodes_.size(); ++i) {
    EXPECT_EQ(results[i].Header("x-cache"), "PEER") << nodes_[i].process->err();
    // Streamed while the leader downloads: the head (sent with the first
    // bytes on disk) long before the leader's client had the last byte.
    EXPECT_LT(results[i].head_after + seconds(2), took[0]) << i;
    DrainAll();
    EXPECT_EQ(Metric(nodes_[i], "hubcache_cluster_leader_streams_total{result=\"ok\"}"), 1)
        << nodes_[i].process->err();
    EXPECT_EQ(Metric(nodes_[i], "hubcache_cluster_leader_bytes_total"), static_cast<double>(size));
    // Verified and committed there too.
    EXPECT_EQ(GetFrom(nodes_[i], kBigPath).Header("x-cache"), "HIT");
  }
}

TEST_F(ClusterTest, ColdStreamsFormATreeAndAChildOfADeadNodeReattachesAbove) {
  // A fan-out of 1: the first node to ask streams from the leader (node 0),
  // the second from the first.
  for (Node& node : nodes_) Start(node, "secret", {"--set", "cluster.stream_fanout=1"});
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  hub().SetBandwidth(0, 20'000'000);  // about 13 s for the whole blob
  hub().ClearLog();
  Node& first = nodes_[1];
  Node& second = nodes_[2];
  std::thread first_client([&] {
    StreamGet(first.port, kBigPath, {}, seconds(120), UINT64_MAX, first.ip);
  });
  ASSERT_TRUE(WaitFor([&] { return Metric(first, "hubcache_cluster_leader_bytes_total") > 0; }))
      << first.process->err();
  StreamResult second_result;
  std::thread second_client([&] {
    second_result = StreamGet(second.port, kBigPath, {}, seconds(120), UINT64_MAX, second.ip);
  });
  // The second streams from the first; once it has some of it, the first dies.
  ASSERT_TRUE(WaitFor([&] {
    return Metric(second, "hubcache_cluster_leader_bytes_total") > 8 << 20;
  })) << second.process->err();
  killed_.insert(first.ip);
  first.process->Signal(SIGKILL);
  first_client.join();
  second_client.join();
  first.process->Wait(seconds(10));
  first.process.reset();
  DrainAll();
  const std::string& log = second.process->err();
  EXPECT_NE(log.find("cold_stream_started digest=" + sha + " source=" + first.cluster_address()),
            std::string::npos) << log;
  EXPECT_NE(log.find("cold_stream_failed digest=" + sha + " source=" + first.cluster_address()),
            std::string::npos) << log;
  EXPECT_NE(log.find("cold_stream_started digest=" + sha + " source=" + nodes_[0].cluster_address()),
            std::string::npos) << log;
  // The child finished from the leader, from its own offset: right bytes,
  // and still one copy from the Hub for the whole cluster.
  EXPECT_EQ(second_result.status, 200);
  EXPECT_TRUE(second_result.complete);
  EXPECT_EQ(second_result.sha256, sha);
  EXPECT_EQ(second_result.Header("x-cache"), "PEER");
  EXPECT_EQ(Metric(second, "hubcache_cluster_leader_streams_total{result=\"ok\"}"), 1);
  EXPECT_EQ(Metric(second, "hubcache_cluster_leader_bytes_total"), static_cast<double>(size));
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
}

TEST_F(ClusterTest, AColdFetchThatTheHubCutsResumesAndStillCostsOneCopy) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  hub().SetBandwidth(0, 80'000'000);
  // The leader's downloads of the blob are cut twice, 3 MB into their bodies.
  hub().AddFault({.path_contains = sha, .drop_after_bytes = 3'000'000, .drop_times = 2});
  hub().ClearLog();
  std::vector<StreamResult> results;
  std::vector<std::thread> clients = GetBigOn({&nodes_[1], &nodes_[2]}, results);
  for (auto& client : clients) client.join();
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].status, 200) << nodes_[i + 1].process->err();
    EXPECT_TRUE(results[i].complete);
    EXPECT_EQ(results[i].sha256, sha);
    EXPECT_EQ(results[i].Header("x-cache"), "PEER");
  }
  // Two downloads were cut short, and the leader asked again only for what
  // it was missing.
  int cut = 0;
  for (const auto& entry : hub().Log()) {
    if (entry.target.find(sha) != std::string::npos && entry.body_bytes_sent == 3'000'000) ++cut;
  }
  EXPECT_EQ(cut, 2);
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
  EXPECT_EQ(GetFrom(nodes_[0], kBigPath).Header("x-cache"), "HIT");
}

TEST_F(ClusterTest, ALeaderKilledMidFetchIsTakenOverByTheNextWhileTheOtherStreamsFromIt) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  hub().SetBandwidth(0, 20'000'000);  // about 13 s for the whole blob
  hub().ClearLog();
  std::vector<StreamResult> results;
  std::vector<std::thread> clients = GetBigOn({&nodes_[1], &nodes_[2]}, results);
  // Once both followers stream from it, the leader (node 0) dies.
  ASSERT_TRUE(WaitFor([&] {
    return Metric(nodes_[1], "hubcache_cluster_leader_bytes_total") > 8 << 20 &&
           Metric(nodes_[2], "hubcache_cluster_leader_bytes_total") > 8 << 20;
  }));
  killed_.insert(nodes_[0].ip);
  nodes_[0].process->Signal(SIGKILL);
  hub().SetBandwidth(0, 0);  // the rest from the Hub at full speed
  for (auto& client : clients) client.join();
  nodes_[0].process->Wait(seconds(10));
  nodes_[0].process.reset();
  // The next in rendezvous order leads the blob now.
  const auto digest = store::Digest::Parse(store::DigestKind::kSha256, sha);
  ASSERT_TRUE(digest);
  const bool first_next = p2p::RendezvousScore(*digest, nodes_[1].cluster_address()) >
                          p2p::RendezvousScore(*digest, nodes_[2].cluster_address());
  Node& next = first_next ? nodes_[1] : nodes_[2];
  Node& other = first_next ? nodes_[2] : nodes_[1];
  for (std::size_t i = 0; i < results.size(); ++i) {
    Node& node = nodes_[i + 1];
    EXPECT_EQ(results[i].status, 200) << node.process->err();
    EXPECT_TRUE(results[i].complete);
    EXPECT_EQ(results[i].sha256, sha);
    EXPECT_EQ(results[i].Header("x-cache"), "PEER");
    EXPECT_GE(Metric(node, "hubcache_cluster_leader_failovers_total"), 1) << node.process->err();
    EXPECT_EQ(GetFrom(node, kBigPath).Header("x-cache"), "HIT");
  }
  DrainAll();
  // The next leader fetched from the Hub only what it had not streamed; the
  // other node streamed the rest from it and never asked the Hub.
  EXPECT_EQ(Metric(next, "hubcache_cluster_leader_streams_total{result=\"took_over\"}"), 1)
      << next.process->err();
  const double next_streamed = Metric(next, "hubcache_cluster_leader_bytes_total");
  EXPECT_LE(Metric(next, "hubcache_source_bytes_total{source=\"hub\"}"),
            static_cast<double>(size) - next_streamed);
  EXPECT_EQ(Metric(other, "hubcache_cluster_leader_streams_total{result=\"ok\"}"), 1)
      << other.process->err();
  EXPECT_LE(Metric(other, "hubcache_source_bytes_total{source=\"hub\"}"), 0) << other.process->err();
  EXPECT_EQ(Metric(other, "hubcache_cluster_leader_bytes_total"), static_cast<double>(size));
  EXPECT_NE(other.process->err().find("cold_stream_started digest=" + sha + " source=" +
                                      next.cluster_address()),
            std::string::npos)
      << other.process->err();
  // The Hub sent one copy, plus what the dead leader had in flight beyond
  // what it had passed on (its parallel ranges: at most 8 of 8 MiB).
  EXPECT_LE(hub().BodyBytesSent(sha), size + (64u << 20));
}

TEST_F(ClusterTest, AGatedColdFileComesThroughTheLeaderWithTheClientsTokenSealedForIt) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  // A gated file: the Hub refuses the leader's own request, which carries no
  // user token; the asking node then sends its client's token, sealed with
  // the cluster key for this file, and the leader fetches with it.
  const std::string target = "/org/gated/resolve/main/model.safetensors";
  const std::string sha = Sha("org/gated", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/gated", "main", "model.safetensors");
  const int lead = LeaderIndex(sha);
  const int asker = (lead + 1) % 3;
  const int third = (lead + 2) % 3;
  hub().ClearLog();
  auto approved = GetFrom(nodes_[asker], target, {{"Authorization", "Bearer hf_approved"}});
  EXPECT_EQ(approved.status, 200);
  EXPECT_EQ(approved.Header("x-cache"), "PEER") << nodes_[asker].process->err();
  EXPECT_EQ(fakehub::Sha256Hex(approved.body), sha);
  EXPECT_EQ(Metric(nodes_[asker], "hubcache_cluster_leader_streams_total{result=\"ok\"}"), 1);
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
  // The leader commits (fsync, rename) once the last byte is out: wait for it.
  EXPECT_TRUE(WaitFor([&] { return fs::exists(BlobFile(nodes_[lead], sha)); }));
  // A client the Hub refuses gets the Hub's refusal on any node, not bytes.
  auto refused = GetFrom(nodes_[third], target, {{"Authorization", "Bearer hf_owner"}});
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body.find(approved.body.substr(0, 64)), std::string::npos);
  EXPECT_EQ(GetFrom(nodes_[third], target).status, 401);
  // The token is in no node's log and in no file of any cache.
  DrainAll();
  for (Node& node : nodes_) {
    EXPECT_EQ(node.process->err().find("hf_approved"), std::string::npos) << node.ip;
    for (const auto& entry : fs::recursive_directory_iterator(node.cache_dir)) {
      if (!entry.is_regular_file()) continue;
      EXPECT_EQ(ReadFile(entry.path()).find("hf_approved"), std::string::npos) << entry.path();
    }
  }
}

TEST_F(ClusterTest, ALeaderReChecksASealedTokenWithTheHubBeforeFetchingWithIt) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string path = "/org/gated/resolve/main/model.safetensors";
  const std::string sha = Sha("org/gated", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/gated", "main", "model.safetensors");
  Node& leader = nodes_[LeaderIndex(sha)];
  const p2p::ClusterKey key{Secret(std::string(kSecret))};
  auto ask = [&](const std::string& sealed, const std::string& sealed_for) {
    std::string body = R"({"digest":")" + sha + R"(","size":)" + std::to_string(size) +
                       R"(,"path":")" + path + "\"";
    if (!sealed.empty()) {
      body += R"(,"token":")" + key.Seal(Secret(sealed), sha + "\n" + sealed_for) + "\"";
    }
    return SignedRequest(leader, "POST", "/_cluster/v1/fetch", body + "}");
  };
  hub().ClearLog();
  // No token: the Hub refuses the leader, which says a token is needed.
  auto anonymous = ask("", "");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 403) << anonymous->body;
  EXPECT_NE(anonymous->body.find("\"needs_token\":true"), std::string::npos);
  // A token the Hub refuses: the Hub's refusal again, and no bytes fetched.
  auto refused = ask("hf_owner", path);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_EQ(hub().BodyBytesSent(sha), 0u);
  // A token sealed for another file does not open: refused before the Hub.
  const std::size_t asked = hub().RequestCount("org/gated");
  auto elsewhere = ask("hf_approved", "/org/gated/resolve/main/config.json");
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 400) << elsewhere->body;
  EXPECT_EQ(hub().RequestCount("org/gated"), asked);
  // An approved token: the leader's request carried it, and it fetches.
  auto approved = ask("hf_approved", path);
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved->status, 200) << approved->body;
  bool authorized_resolve = false;
  for (const auto& entry : hub().Log()) {
    if (entry.method == "HEAD" && entry.target == path && entry.status < 400) {
      authorized_resolve = entry.had_authorization;
    }
  }
  EXPECT_TRUE(authorized_resolve);
  EXPECT_TRUE(WaitFor([&] { return fs::exists(BlobFile(leader, sha)); }));
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
}

TEST_F(ClusterTest, APrefetchWithClusterLeavesTheRepoOnEveryNodeWithOneCopyFromTheHub) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const std::uint64_t size = hub().FileSize("model", "org/big", "main", "model.safetensors");
  hub().SetBandwidth(0, 100'000'000);
  hub().ClearLog();
  // Run on any node, with that node's configuration.
  const RunResult run = PrefetchOn(nodes_[1], {"org/big", "--cluster"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  for (Node& node : nodes_) {
    EXPECT_NE(run.out.find("  " + node.cluster_address() + ": holds all 2 files"), std::string::npos)
        << run.out;
    EXPECT_TRUE(fs::exists(BlobFile(node, sha))) << node.ip;
    // Served from each node's own cache, metadata and bytes.
    auto head = HttpRequest(node.ip, node.port, "HEAD", kBigPath, {}, "");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->Header("x-cache"), "HIT") << node.ip;
    EXPECT_EQ(GetFrom(node, "/org/big/resolve/main/config.json").Header("x-cache"), "HIT") << node.ip;
  }
  // One copy from the Hub for the whole cluster, and the summary says so.
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
  EXPECT_NE(run.out.find("from the Hub: 256.0 MiB in all"), std::string::npos) << run.out;
  // Again: everything is there already.
  const RunResult again = PrefetchOn(nodes_[0], {"org/big", "--cluster"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("(0 fetched, 2 already cached)"), std::string::npos) << again.out;
  EXPECT_EQ(hub().BodyBytesSent(sha), size);
}

TEST_F(ClusterTest, APrefetchWithReplicasPutsEachFileOnItsFirstNodesAndNamesTheNodesThatAreDown) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string sha = Sha("org/big", "model.safetensors");
  const auto digest = store::Digest::Parse(store::DigestKind::kSha256, sha);
  ASSERT_TRUE(digest);
  // The blob goes to the two nodes first in its rendezvous order.
  std::vector<Node*> ranked = {&nodes_[0], &nodes_[1], &nodes_[2]};
  std::sort(ranked.begin(), ranked.end(), [&](Node* a, Node* b) {
    return p2p::RendezvousScore(*digest, a->cluster_address()) >
           p2p::RendezvousScore(*digest, b->cluster_address());
  });
  const RunResult run = PrefetchOn(*ranked[2], {"org/big", "--replicas", "2"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(fs::exists(BlobFile(*ranked[0], sha)));
  EXPECT_TRUE(fs::exists(BlobFile(*ranked[1], sha)));
  EXPECT_FALSE(fs::exists(BlobFile(*ranked[2], sha)));
  EXPECT_EQ(hub().BodyBytesSent(sha), hub().FileSize("model", "org/big", "main", "model.safetensors"));
  // A member that is down holds nothing: the summary names it and why, and
  // the exit status says that not every node holds the repo.
  Node& down = *ranked[0];
  killed_.insert(down.ip);
  down.process->Signal(SIGKILL);
  down.process->Wait(seconds(10));
  ASSERT_TRUE(WaitFor([&] { return Metric(*ranked[1], "hubcache_cluster_members_alive") == 2; }));
  const RunResult partial = PrefetchOn(*ranked[1], {"org/big", "--cluster"});
  EXPECT_EQ(partial.exit_code, 1) << partial.out << partial.err;
  EXPECT_NE(partial.out.find("  " + down.cluster_address() + ": holds nothing: down (last answered"),
            std::string::npos)
      << partial.out;
  EXPECT_NE(partial.out.find("  " + ranked[2]->cluster_address() + ": holds all 2 files"),
            std::string::npos)
      << partial.out;
  EXPECT_TRUE(fs::exists(BlobFile(*ranked[2], sha)));
  // Usage errors are named.
  const RunResult both = PrefetchOn(*ranked[1], {"org/big", "--cluster", "--replicas", "2"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
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
  // The routes the daemon serves itself check the signature too.
  const std::string blob = "/_cluster/v1/blob/" + Sha("org/big", "model.safetensors");
  auto unsigned_blob = HttpRequest(node.ip, node.cluster_port, "GET", blob, {}, "");
  ASSERT_TRUE(unsigned_blob);
  EXPECT_EQ(unsigned_blob->status, 401);
  auto unsigned_fetch =
      HttpRequest(node.ip, node.cluster_port, "POST", "/_cluster/v1/fetch", {}, "{}");
  ASSERT_TRUE(unsigned_fetch);
  EXPECT_EQ(unsigned_fetch->status, 401);
  // Signed but malformed: 400 with a JSON error, and nothing fetched.
  auto signed_request = [&](const std::string& method, const std::string& target,
                            const std::string& body) {
    return SignedRequest(node, method, target, body);
  };
  const std::string sha = Sha("org/big", "model.safetensors");
  for (const std::string& body :
       {std::string("not json"), std::string(R"({"digest":"abc","size":1,"path":"/org/big/resolve/main/x"})"),
        R"({"digest":")" + sha + R"(","size":0,"path":"/org/big/resolve/main/x"})",
        R"({"digest":")" + sha + R"(","size":5,"path":"/org/big/resolve/main/../../etc/passwd"})",
        R"({"digest":")" + sha + R"(","size":5,"path":"http://elsewhere/org/big/resolve/main/x"})",
        R"({"digest":")" + sha + R"(","size":5,"path":"/api/models/org/big"})"}) {
    auto refused = signed_request("POST", "/_cluster/v1/fetch", body);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 400) << body;
    EXPECT_NE(refused->body.find("\"error\""), std::string::npos) << body;
  }
  for (const std::string& target :
       {std::string("/_cluster/v1/blob/XYZ"), blob + "?from=abc", blob + "?to=5"}) {
    auto refused = signed_request("GET", target, "");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 400) << target;
  }
  // A blob the node neither holds nor fetches.
  auto absent = signed_request("GET", blob, "");
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->status, 404);
  EXPECT_EQ(hub().BodyBytesSent(sha), 0u);
  // The client port knows nothing of the cluster API.
  EXPECT_EQ(GetFrom(node, "/_cluster/v1/health").status, 404);
}

TEST_F(ClusterTest, ARestrictedFileIsNotServedToARefusedTokenEvenWhenAPeerHoldsIt) {
  for (Node& node : nodes_) Start(node);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string target = "/org/gated/resolve/main/model.safetensors";
  // The asker and its blob's leader hold it afterwards; the third node not.
  const int lead = LeaderIndex(Sha("org/gated", "model.safetensors"));
  Node& asker = nodes_[(lead + 1) % 3];
  Node& other = nodes_[(lead + 2) % 3];
  auto approved = GetFrom(asker, target, {{"Authorization", "Bearer hf_approved"}});
  ASSERT_EQ(approved.status, 200);
  WaitForAnnounced(asker, 1);
  // Another node, a token the Hub refuses: the Hub's refusal, not the bytes.
  auto refused = GetFrom(other, target, {{"Authorization", "Bearer hf_owner"}});
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body.find(approved.body.substr(0, 64)), std::string::npos);
  auto anonymous = GetFrom(other, target);
  EXPECT_EQ(anonymous.status, 401);
  // The approved token on that node gets it, from the peers.
  auto peer = GetFrom(other, target, {{"Authorization", "Bearer hf_approved"}});
  EXPECT_EQ(peer.status, 200);
  EXPECT_EQ(peer.body, approved.body);
  EXPECT_EQ(peer.Header("x-cache"), "PEER");
}

// The token matrix through the cluster (issue 18 §5; tests/e2e/token_matrix.h):
// one node caches a gated, a private and a public file for those who may
// read them; every node then answers every token as the Hub would (the
// others hold nothing yet, so their bytes come from the cluster or the Hub
// only once the Hub said yes), before and after the Hub changes its mind.
// No token appears in any node's cache directory, debug log, /metrics or
// answers.
TEST_F(ClusterTest, EveryNodeAnswersEachTokenAsTheHubWould) {
  const std::vector<std::string> extra = {"--set", "access.grant_ttl=3s", "--set",
                                          "access.public_ttl=3s", "--set", "log.level=debug"};
  for (Node& node : nodes_) Start(node, "secret", extra);
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  std::map<std::string, std::string> contents;
  for (const std::string repo : {"org/gated", "org/private", "org/model"}) {
    contents[repo] = Content(repo, "config.json");
  }
  std::string transcript;
  auto expect_on = [&](Node& node, const TokenCell& cell) {
    SCOPED_TRACE(node.ip);
    ExpectCell(
        cell,
        [&](const std::string& method, const std::string& target, const Headers& headers) {
          auto r = HttpRequest(node.ip, node.port, method, target, headers, "");
          if (!r) {
            ADD_FAILURE() << method << " " << target << " on " << node.ip << ": no response";
            return HttpResponse{};
          }
          return *r;
        },
        contents.at(cell.repo), transcript);
  };
  expect_on(nodes_[0], {"org/gated", "hf_approved", 200, ""});
  expect_on(nodes_[0], {"org/private", "hf_owner", 200, ""});
  expect_on(nodes_[0], {"org/model", "", 200, ""});
  // Node by node: a public fact lasts access.public_ttl from the anonymous
  // success that taught it, which comes just before the other public cells.
  for (Node& node : nodes_) {
    for (const TokenCell& cell : MatrixBefore()) expect_on(node, cell);
  }
  ChangeTheHubsMind(hub());
  std::this_thread::sleep_for(milliseconds(3500));
  for (Node& node : nodes_) {
    for (const TokenCell& cell : MatrixAfter()) expect_on(node, cell);
  }

  std::string metrics;
  for (Node& node : nodes_) metrics += GetFrom(node, "/metrics").body;
  std::string logs;
  std::string disk;
  for (Node& node : nodes_) {
    node.process->Signal(SIGTERM);
    EXPECT_EQ(node.process->Wait(seconds(30)), 0);
    logs += node.process->err();
    node.process.reset();
    disk += EveryFileUnder(node.cache_dir);
  }
  ExpectNoTokenIn({{"in a cache directory", disk}, {"in /metrics", metrics}, {"in an answer", transcript}},
                  logs);
}

// The status page of a cluster node (issue 19 §4): the members and whether
// they are alive, the blobs this node leads, and no secret. (Bytes per peer
// and the source of a cold download are not asserted yet: see the closing
// note of this slice.)
TEST_F(ClusterTest, TheStatusPageShowsTheMembersAndWhetherTheyAreAlive) {
  for (Node& node : nodes_) Start(node, "secret", {"--set", "status.enabled=true"});
  WaitForMembers({&nodes_[0], &nodes_[1], &nodes_[2]});
  const std::string target = "/org/model/resolve/main/model.safetensors";
  // Node 0 asks: its leader fetches it, both hold it; the third node takes
  // it from them.
  const int lead = LeaderIndex(Sha("org/model", "model.safetensors"));
  Node& asker = nodes_[lead == 1 ? 2 : 1];
  ASSERT_EQ(GetFrom(nodes_[0], target).status, 200);
  WaitForAnnounced(nodes_[0], 1);
  auto peer = GetFrom(asker, target);
  ASSERT_EQ(peer.status, 200);
  ASSERT_EQ(peer.Header("x-cache"), "PEER");

  const auto body = GetFrom(asker, "/_hubcache/api/cluster").body;
  const nlohmann::json status = nlohmann::json::parse(body, nullptr, false);
  ASSERT_FALSE(status.is_discarded()) << body;
  EXPECT_EQ(status["enabled"], true);
  EXPECT_EQ(status["node"], asker.cluster_address());
  ASSERT_EQ(status["members"].size(), 3u) << body;
  for (const auto& member : status["members"]) {
    const std::string address = member["address"];
    if (address == asker.cluster_address()) {
      EXPECT_EQ(member["self"], true);
      continue;
    }
    EXPECT_EQ(member["alive"], true) << address;
  }
  EXPECT_TRUE(status.contains("leader_of"));
  EXPECT_EQ(body.find(kSecret), std::string::npos);
  // The blob came from the two holders: every byte of it is put on a member,
  // however short the transfer.
  std::uint64_t from_members = 0;
  for (const auto& member : status["members"]) from_members += member.value("bytes_in", std::uint64_t{0});
  EXPECT_GE(from_members, peer.body.size()) << body;
  EXPECT_GE(status["bytes_from_peers"].get<std::uint64_t>(), peer.body.size()) << body;
  const auto overview =
      nlohmann::json::parse(GetFrom(asker, "/_hubcache/api/overview").body, nullptr, false);
  EXPECT_EQ(overview["cluster"], true);
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
  // The blob's leader fetches it from the Hub; another node gets it from it.
  const int lead = LeaderIndex(sha);
  const int other = lead == 0 ? 1 : 0;
  ASSERT_EQ(GetFrom(nodes_[lead], target).status, 200);
  WaitForAnnounced(nodes_[lead], 1);
  hub().ClearLog();
  auto peer = GetFrom(nodes_[other], target);
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

// kill -9 of random nodes in a loop while they swarm (issue 18 §4): in each
// round every node asks for the big blob at once (the first round a cold
// start through the leader, later ones a swarm from the holders), and a
// random node is killed with SIGKILL at a random moment. Whatever a client
// got whole is exact; the victim's store verifies while it is down; every
// other time its cache is wiped, so that it must fetch through the cluster
// again; then it rejoins. At the end every node holds the blob and every
// store verifies.
TEST_F(ClusterTest, KillingRandomNodesDuringSwarmsLeavesEveryStoreSound) {
  for (Node& node : nodes_) Start(node);
  const std::vector<Node*> all = {&nodes_[0], &nodes_[1], &nodes_[2]};
  WaitForMembers(all);
  const std::string sha = Sha("org/big", "model.safetensors");
  std::mt19937 rng(20261207);
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<StreamResult> results;
    auto clients = GetBigOn(all, results);
    Node& victim = nodes_[rng() % nodes_.size()];
    std::this_thread::sleep_for(milliseconds(200 + rng() % 1000));
    killed_.insert(victim.ip);
    victim.process->Signal(SIGKILL);
    EXPECT_EQ(victim.process->Wait(seconds(30)), 128 + SIGKILL);
    for (auto& t : clients) t.join();
    for (const StreamResult& r : results) {
      if (r.complete) {
        EXPECT_EQ(r.sha256, sha) << "wrong bytes delivered as complete";
      }
    }
    auto verify = testing::Run(
        {HUBCACHE_BINARY, "verify", "--cache-dir", victim.cache_dir.string()}, {},
        std::chrono::minutes(2));
    EXPECT_EQ(verify.exit_code, 0) << victim.ip << "\n" << verify.out << verify.err;
    if (round % 2 == 1) fs::remove_all(victim.cache_dir);
    victim.process.reset();
    killed_.erase(victim.ip);
    Start(victim);
    WaitForMembers(all);
  }
  for (Node* node : all) {
    auto r = StreamGet(node->port, kBigPath, {}, seconds(180), UINT64_MAX, node->ip);
    EXPECT_TRUE(r.complete) << node->ip;
    EXPECT_EQ(r.sha256, sha) << node->ip;
  }
  for (Node* node : all) {
    Stop(*node);
    auto verify = testing::Run(
        {HUBCACHE_BINARY, "verify", "--cache-dir", node->cache_dir.string()}, {},
        std::chrono::minutes(2));
    EXPECT_EQ(verify.exit_code, 0) << node->ip << "\n" << verify.out << verify.err;
    EXPECT_TRUE(fs::exists(BlobFile(*node, sha))) << node->ip;
  }
}

}  // namespace
}  // namespace hubcache::testing
