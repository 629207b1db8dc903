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
#include <cstdint>
#include <functional>
#include <span>
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

  // Receives the bytes of a streamed body in order; the span is valid until
  // the returned awaitable completes.
  using ChunkSink = std::function<net::awaitable<Result<void>>(std::span<const std::uint8_t>)>;

  // GET `target` from `node` and hands its body to `sink` as it arrives, a
  // chunk of at most 1 MiB at a time: for bodies too large to hold (a blob a
  // node streams from the one fetching it). Success needs a 200 or 206 whose
  // body is exactly `expected_bytes` long. `connect_timeout` covers connect
  // and the response head; `idle_timeout` each wait for more bytes, so a
  // slow but moving stream may last as long as it needs. Errors: those of
  // Call; Errc::kUnexpectedReply for another status or length (nothing
  // handed to `sink`); the sink's error; net::error::eof when the body ends
  // short. The bytes handed over before an error stay handed over.
  net::awaitable<Result<void>> Stream(std::string_view node, std::string_view target,
                                      std::uint64_t expected_bytes, const ChunkSink& sink,
                                      std::chrono::milliseconds connect_timeout,
                                      std::chrono::milliseconds idle_timeout) const;

  const std::string& self() const { return self_; }

 private:
  const ClusterKey& key_;
  const std::string self_;
};

// Splits "host:port" or "[v6]:port". False when malformed.
bool SplitNodeAddress(std::string_view node, std::string& host, std::string& port);

}  // namespace hubcache::p2p
