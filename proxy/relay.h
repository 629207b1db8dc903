// RelaySink: streams an upstream answer to the client as it arrives, for
// routes hubcache does not cache (unknown GETs, writes when allowed, blobs
// the store has no room for).
//
// The head is relayed with ShapeRelayedHeaders() and X-Cache set; the body
// keeps its Content-Length when the upstream gave one, and is re-chunked
// otherwise. Finish() ends the exchange: a clean end, a JSON 502/504 when
// nothing was sent yet, or FIN before the body is complete when the upstream
// broke off mid-body.
//
// Executor: the connection's strand.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/exchange.h"
#include "proxy/hub_client.h"
#include "proxy/metrics.h"

namespace hubcache::proxy {

class RelaySink final : public BodySink {
 public:
  // URLs on `from_base` (the Hub) in Link/Location become `to_base`.
  RelaySink(Exchange& exchange, std::string from_base, std::string to_base, CacheStatus cache);

  net::awaitable<Result<void>> OnHead(const ResponseHead& head) override;
  net::awaitable<Result<void>> OnData(std::span<const std::uint8_t> data) override;

  // Completes the exchange after HubClient::Send returned `result`.
  net::awaitable<void> Finish(const Result<void>& result);

  std::uint64_t body_bytes() const { return sent_; }

 private:
  Exchange& exchange_;
  const std::string from_base_;
  const std::string to_base_;
  const CacheStatus cache_;
  bool head_sent_ = false;
  bool chunked_ = false;
  unsigned status_ = 0;
  std::uint64_t sent_ = 0;
};

}  // namespace hubcache::proxy
