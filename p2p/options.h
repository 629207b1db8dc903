// Options of the cluster: which nodes share their blobs, and how. The
// [cluster] section of the configuration fills this struct (config/). With
// `listen` empty the node is alone: no libtorrent session, no extra port.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace hubcache::p2p {

struct ClusterOptions {
  // host:port of this node's cluster API (IPv4:PORT or [IPv6]:PORT, a
  // numeric address the other nodes can reach). Empty: no cluster.
  std::string listen;
  // The BitTorrent listener's port on the same host; 0 means listen's port + 1.
  std::uint32_t torrent_port = 0;
  // The cluster addresses (host:port) of the nodes, this one included or not:
  // one list can serve every node.
  std::vector<std::string> peers;
  // Instead of (or besides) `peers`: "name:port", a DNS name that resolves to
  // every node (a Kubernetes headless Service), re-resolved every
  // `dns_interval`.
  std::string dns;
  std::chrono::milliseconds dns_interval{10'000};
  // A file holding the cluster's shared secret (at least 16 bytes; trailing
  // newlines are ignored). Every cluster request is signed with it.
  std::string secret_file;
  // Liveness: every member is asked for /_cluster/v1/health this often, and
  // one that has not answered for `dead_after` is left out of every decision.
  std::chrono::milliseconds health_interval{1'000};
  std::chrono::milliseconds dead_after{3'000};
  // A swarm download that makes no progress for this long gives up; the Hub
  // continues from the bytes already verified.
  std::chrono::milliseconds stall_timeout{10'000};
  // A seeding torrent with no peer for this long is unloaded (it is loaded
  // again when a node asks for the blob): memory follows the swarms in flight.
  std::chrono::milliseconds seed_idle{120'000};
  // The cold start: while a blob's leader fetches it from the Hub, at most
  // this many nodes stream it from the leader, and from each node that
  // streams it; the others attach under them, a tree of this fan-out. Each
  // node then uploads at most this many copies while receiving one: with a
  // link of L bytes/s and a Hub download of U, up to L/U keeps up.
  std::uint32_t stream_fanout = 4;
  // Bytes per second this node's libtorrent session may upload; 0 is no limit
  // (a stand-in for a node's link in benchmarks).
  std::uint64_t upload_rate_limit = 0;
};

}  // namespace hubcache::p2p
