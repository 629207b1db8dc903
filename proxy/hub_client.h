// HubClient: hubcache's outbound HTTP/1.1 client for the Hub and its CDN.
//
// Plain http:// and https:// (SNI, chain and host-name verification against
// the system CA store or upstream.ca_file). Connections are kept alive and
// reused through a ConnectionPool; a reused connection that turns out to be
// closed by the peer before any response byte is replaced once,
// transparently. Redirects (301, 302, 303, 307, 308; absolute and relative
// Locations) are followed up to a limit when asked. The token is sent only to
// the origin (scheme, host, port) of upstream.url, so it never reaches a CDN,
// a bridge or any other host, even when a request is made to one directly. Bodies stream to a BodySink as they arrive: nothing
// buffers a whole body except Fetch(), which is for small API documents and
// has a size limit.
//
// Deadlines: connect (TCP + TLS) within upstream.connect_timeout; the
// response head within upstream.response_timeout of sending the request; each
// body read within upstream.read_timeout. A missed deadline fails the request
// with beast::error::timeout.
//
// Resilience (Send and Fetch): an idempotent request (GET, HEAD) that fails
// to connect, times out, is cut off, or is answered 429, 500, 502, 503 or 504
// is retried with exponential backoff and jitter (a 429/503 Retry-After in
// seconds is honoured), up to upstream.max_retries attempts in a row without
// progress. A GET whose body breaks off is resumed with
// `Range: bytes=<received>-` (and If-Range with the ETag), so the sink sees
// one continuous body; a resumed answer that does not continue exactly where
// the body stopped fails the request instead of corrupting it. When retries
// are exhausted on a 429/5xx, that answer goes to the sink as is.
//
// Never logs a token or the query string of a URL (signed CDN URLs).
//
// Executor: the coroutines run on the caller's executor; the client may be
// used from many coroutines at once. It must outlive every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

#include "core/asio_ssl.h"
#include "core/result.h"
#include "core/secret.h"
#include "proxy/connection_pool.h"
#include "proxy/options.h"

namespace hubcache::proxy {

struct OutRequest {
  http::verb method = http::verb::get;
  std::string url = {};  // absolute http(s) URL, path and query already encoded
  std::vector<std::pair<std::string, std::string>> headers = {};  // extra headers (Range, Accept, ...)
  // Sent as `Authorization: Bearer <token>`, only to the Hub's own origin
  // (upstream.url): never to a CDN or any other host, whatever the URL.
  Secret token = Secret();
  std::string body = {};  // with a Content-Type among `headers`
  bool follow_redirects = true;
  // Retry and resume as the class comment says. Defaults to true for GET and
  // HEAD; set it for other requests that are safe to repeat (paths-info).
  std::optional<bool> retry = std::nullopt;
};

// Backoff between retries: the k-th consecutive failure waits a random time
// in [d/2, d] with d = min(base * 2^(k-1), cap).
struct RetryPolicy {
  std::chrono::milliseconds base = std::chrono::milliseconds(250);
  std::chrono::milliseconds cap = std::chrono::seconds(8);
  // Longest Retry-After honoured; longer values are capped to this.
  std::chrono::milliseconds max_retry_after = std::chrono::seconds(30);
};

struct ResponseHead {
  unsigned status = 0;
  http::fields fields;
  std::string url;  // the URL that gave this answer (after redirects)

  // The value of header `name`, or "" (case-insensitive).
  std::string Header(std::string_view name) const;
};

// Receives a streamed response. Both calls run on the requesting coroutine's
// executor; an error from either stops the transfer and is returned by Send().
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual net::awaitable<Result<void>> OnHead(const ResponseHead& head) = 0;
  virtual net::awaitable<Result<void>> OnData(std::span<const std::uint8_t> data) = 0;
};

struct BufferedResponse {
  ResponseHead head;
  std::string body;
};

class HubClient {
 public:
  // Errors: the CA file cannot be loaded; core::Errc::kInvalidArgument for
  // an unusable upstream.proxy.
  static Result<std::unique_ptr<HubClient>> Create(const UpstreamOptions& options,
                                                   ConnectionPool::Limits pool_limits = {},
                                                   RetryPolicy retry_policy = {});

  // Sends `request`, follows redirects if asked, retries and resumes as the
  // class comment says, and streams the final response (any status) into
  // `sink`. Errors: connect/TLS/timeout errors, Errc::kTooManyRedirects,
  // Errc::kBadRedirect, Errc::kBadUrl, Errc::kResumeFailed, errors from the
  // sink, and stream errors when the body breaks off for good (the sink then
  // got a prefix of the body).
  net::awaitable<Result<void>> Send(OutRequest request, BodySink& sink);

  // Like Send(), collecting the body in memory. Errors as Send(), plus
  // Errc::kBodyTooLarge past `max_body` bytes.
  net::awaitable<Result<BufferedResponse>> Fetch(OutRequest request,
                                                 std::size_t max_body = 64 << 20);

  ConnectionPool& pool() { return pool_; }

  static constexpr int kMaxRedirects = 10;

 private:
  struct Hop;
  HubClient(const UpstreamOptions& options, std::unique_ptr<ssl::context> tls,
            ConnectionPool::Limits limits, RetryPolicy retry_policy);
  // One attempt, redirects included.
  net::awaitable<Result<void>> SendOnce(OutRequest request, BodySink& sink);
  std::chrono::milliseconds Backoff(int failures);
  net::awaitable<Result<Hop>> Exchange(const OutRequest& request, const std::string& url,
                                       bool send_token, BodySink& sink);
  template <class Stream>
  net::awaitable<Result<Hop>> ExchangeOn(Stream& stream,
                                         std::unique_ptr<UpstreamConnection> connection,
                                         const OutRequest& request, const core::Url& url,
                                         bool send_token, BodySink& sink, bool& response_started);

  const UpstreamOptions options_;
  const RetryPolicy retry_policy_;
  std::optional<ProxySettings> proxy_;
  std::optional<Origin> hub_origin_;  // where tokens may go
  std::unique_ptr<ssl::context> tls_;
  ConnectionPool pool_;
};

}  // namespace hubcache::proxy
