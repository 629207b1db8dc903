// ClusterClient: signed HTTP/1.1 requests from this node to another node's
// cluster API (plain HTTP on the cluster network; see p2p/cluster_auth.h).
//
// One connection per call: control messages are small and rare next to the
// bytes, which move over BitTorrent. Every call has a deadline covering
// resolve, connect, write and read; a node that does not answer in time is
// an error, never a hang.
//
// Executor: calls run on the caller's executor; the client holds no state
// between calls and is safe to use from several coroutines at once.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/asio.h"
#include "core/result.h"
#include "p2p/cluster_auth.h"

namespace hubcache::p2p {

struct ClusterReply {
  unsigned status = 0;
  std::string body;
};

class ClusterClient {
 public:
  // `self` is this node's cluster address, sent as X-Hubcache-Node.
  ClusterClient(const ClusterKey& key, std::string self) : key_(key), self_(std::move(self)) {}

  // Sends METHOD `target` with `body` to `node` (host:port). Errors: resolve
  // and connect errors, net::error::timed_out after `timeout`, a reply larger
  // than `max_reply_bytes`. Any HTTP status is a success here.
  net::awaitable<Result<ClusterReply>> Call(std::string_view node, std::string_view method,
                                            std::string_view target, std::string body,
                                            std::chrono::milliseconds timeout,
                                            std::size_t max_reply_bytes = 4 << 20) const;

  const std::string& self() const { return self_; }

 private:
  const ClusterKey& key_;
  const std::string self_;
};

// Splits "host:port" or "[v6]:port". False when malformed.
bool SplitNodeAddress(std::string_view node, std::string& host, std::string& port);

}  // namespace hubcache::p2p
