#include "proxy/hub_client.h"

#include <array>
#include <charconv>
#include <limits>
#include <random>

#include <boost/beast/core/string.hpp>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/log.h"
#include "proxy/byte_ranges.h"
#include "proxy/errc.h"
#include "proxy/exchange.h"

namespace hubcache::proxy {
namespace {

constexpr std::size_t kReadChunk = 128 * 1024;
// Bytes one socket read may take in.
constexpr std::size_t kSocketReadBytes = 64 * 1024;
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxRedirectBody = 64 * 1024;
constexpr const char* kUserAgent = "hubcache";

bool IsRedirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// scheme://host:port/path, without the query: what may appear in logs.
std::string LoggableUrl(const core::Url& url) {
  core::Url copy = url;
  copy.has_query = false;
  copy.query.clear();
  return copy.ToString();
}

// Resolves a Location header against the URL that sent it.
std::optional<std::string> ResolveLocation(const core::Url& base, std::string_view location) {
  location = location.substr(0, location.find('#'));
  if (location.empty()) return std::nullopt;
  if (location.starts_with("http://") || location.starts_with("https://") ||
      location.starts_with("HTTP://") || location.starts_with("HTTPS://")) {
    if (!core::ParseUrl(location)) return std::nullopt;
    return std::string(location);
  }
  const std::string prefix = base.scheme + "://" + base.Authority();
  if (location.starts_with("//")) return base.scheme + ":" + std::string(location);
  if (location.front() == '/') return prefix + std::string(location);
  // Relative to the directory of the current path.
  std::string dir = base.path.substr(0, base.path.rfind('/') + 1);
  if (dir.empty()) dir = "/";
  return prefix + dir + std::string(location);
}

// Swallows a redirect's body, up to a limit.
class DrainSink final : public BodySink {
 public:
  explicit DrainSink(std::size_t limit) : left_(limit) {}
  net::awaitable<Result<void>> OnHead(const ResponseHead&) override { co_return Result<void>(); }
  net::awaitable<Result<void>> OnData(std::span<const std::uint8_t> data) override {
    if (data.size() > left_) co_return Fail(Errc::kBodyTooLarge);
    left_ -= data.size();
    co_return Result<void>();
  }

 private:
  std::size_t left_;
};

// The response being collected by Fetch().
class BufferSink final : public BodySink {
 public:
  explicit BufferSink(std::size_t max_body) : max_body_(max_body) {}
  net::awaitable<Result<void>> OnHead(const ResponseHead& head) override {
    response.head = head;
    co_return Result<void>();
  }
  net::awaitable<Result<void>> OnData(std::span<const std::uint8_t> data) override {
    if (response.body.size() + data.size() > max_body_) co_return Fail(Errc::kBodyTooLarge);
    response.body.append(reinterpret_cast<const char*>(data.data()), data.size());
    co_return Result<void>();
  }
  BufferedResponse response;

 private:
  std::size_t max_body_;
};

bool RetryableStatus(unsigned status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// Errors worth another attempt: network trouble and retryable statuses, not
// our own refusals (bad URL, redirects) nor certificate failures.
bool Retryable(const ErrorCode& ec) {
  if (ec == Errc::kRetryableStatus) return true;
  if (ec.category() == Category()) return false;
  if (ec.category() == net::error::get_ssl_category()) {
    return ec == net::ssl::error::stream_truncated;
  }
  return true;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value) {
  std::uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return std::nullopt;  // HTTP-date form: use the normal backoff
  }
  return std::chrono::milliseconds(std::min<std::uint64_t>(seconds, 3600) * 1000);
}

// Progress of one logical response across attempts.
struct ResumeState {
  bool head_sent = false;
  unsigned status = 0;
  std::uint64_t delivered = 0;  // body bytes handed to the sink
  std::string etag;
  std::uint64_t first_byte = 0;              // offset of the first body byte in the file
  std::optional<std::uint64_t> last_byte;    // inclusive; absent: to the end

  // Rewrites `attempt` to ask for what is still missing. False when the
  // response cannot be resumed (not a 200/206 body).
  bool PrepareResume(OutRequest& attempt) const {
    if (status != 200 && status != 206) return false;
    std::erase_if(attempt.headers, [](const auto& h) {
      return beast::iequals(h.first, "range") || beast::iequals(h.first, "if-range");
    });
    std::string range = "bytes=" + std::to_string(first_byte + delivered) + "-";
    if (last_byte) range += std::to_string(*last_byte);
    attempt.headers.emplace_back("Range", range);
    if (!etag.empty() && !etag.starts_with("W/")) attempt.headers.emplace_back("If-Range", etag);
    return true;
  }
};

// Sits between SendOnce() and the caller's sink: holds back retryable
// answers, forwards the head once, and checks that resumed answers continue
// exactly where the body stopped.
class Relay final : public BodySink {
 public:
  Relay(BodySink& sink, ResumeState& state, bool may_retry)
      : sink_(sink), state_(state), may_retry_(may_retry) {}

  net::awaitable<Result<void>> OnHead(const ResponseHead& head) override {
    status_ = head.status;
    if (!state_.head_sent) {
      if (may_retry_ && RetryableStatus(head.status)) {
        retry_after_ = ParseRetryAfter(head.Header("retry-after"));
        co_return Fail(Errc::kRetryableStatus);
      }
      state_.head_sent = true;
      state_.status = head.status;
      state_.etag = head.Header("etag");
      if (head.status == 206) {
        auto range = ParseContentRange(head.Header("content-range"));
        if (range) {
          state_.first_byte = range->span.first;
          state_.last_byte = range->span.last;
        }
      }
      co_return co_await Forward([&] { return sink_.OnHead(head); });
    }
    // A resumed answer: it must continue exactly at the next missing byte.
    const std::uint64_t want = state_.first_byte + state_.delivered;
    if (head.status == 206) {
      auto range = ParseContentRange(head.Header("content-range"));
      if (range && range->span.first == want) co_return Result<void>();
      co_return Fail(Errc::kResumeFailed);
    }
    if (head.status == 200 && state_.first_byte == 0 && !state_.last_byte) {
      // The server ignored the range (or the If-Range did not match and
      // sent the whole, possibly new, content): only an unchanged ETag lets
      // us skip what we already delivered.
      if (!state_.etag.empty() && head.Header("etag") == state_.etag) {
        skip_ = state_.delivered;
        co_return Result<void>();
      }
    }
    if (may_retry_ && RetryableStatus(head.status)) {
      retry_after_ = ParseRetryAfter(head.Header("retry-after"));
      co_return Fail(Errc::kRetryableStatus);
    }
    co_return Fail(Errc::kResumeFailed);
  }

  net::awaitable<Result<void>> OnData(std::span<const std::uint8_t> data) override {
    if (skip_ > 0) {
      const std::uint64_t n = std::min<std::uint64_t>(skip_, data.size());
      skip_ -= n;
      data = data.subspan(n);
      if (data.empty()) co_return Result<void>();
    }
    auto r = co_await Forward([&] { return sink_.OnData(data); });
    if (r) {
      state_.delivered += data.size();
      progressed_ = true;
    }
    co_return r;
  }

  bool sink_failed() const { return sink_failed_; }
  bool progressed() const { return progressed_; }
  unsigned status() const { return status_; }
  std::optional<std::chrono::milliseconds> retry_after() const { return retry_after_; }

 private:
  template <class F>
  net::awaitable<Result<void>> Forward(F call) {
    auto r = co_await call();
    if (!r) sink_failed_ = true;
    co_return r;
  }

  BodySink& sink_;
  ResumeState& state_;
  const bool may_retry_;
  bool sink_failed_ = false;
  bool progressed_ = false;
  unsigned status_ = 0;
  std::uint64_t skip_ = 0;
  std::optional<std::chrono::milliseconds> retry_after_;
};

}  // namespace

std::string ResponseHead::Header(std::string_view name) const {
  auto it = fields.find(beast::string_view(name.data(), name.size()));
  return it == fields.end() ? std::string() : std::string(it->value());
}

// The outcome of one hop: a final answer was streamed, or a redirect.
struct HubClient::Hop {
  bool redirect = false;
  unsigned status = 0;
  std::string location;
};

HubClient::HubClient(const UpstreamOptions& options, std::unique_ptr<ssl::context> tls,
                     ConnectionPool::Limits limits, RetryPolicy retry_policy)
    : options_(options), retry_policy_(retry_policy), tls_(std::move(tls)), pool_(limits) {}

Result<std::unique_ptr<HubClient>> HubClient::Create(const UpstreamOptions& options,
                                                     ConnectionPool::Limits pool_limits,
                                                     RetryPolicy retry_policy) {
  auto tls = MakeClientTlsContext(options.ca_file);
  if (!tls) return Fail(tls.error());
  auto proxy = ProxySettings::Parse(options.proxy, options.no_proxy);
  if (!proxy) return Fail(proxy.error());
  std::unique_ptr<HubClient> client(
      new HubClient(options, std::move(*tls), pool_limits, retry_policy));
  client->proxy_ = std::move(*proxy);
  if (auto hub = core::ParseUrl(options.url)) client->hub_origin_ = Origin::Of(*hub);
  return client;
}

std::chrono::milliseconds HubClient::Backoff(int failures) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  auto d = retry_policy_.base * (1LL << std::min(failures - 1, 20));
  d = std::min<std::chrono::milliseconds>(d, retry_policy_.cap);
  std::uniform_int_distribution<long long> jitter(d.count() / 2, std::max<long long>(d.count(), 1));
  return std::chrono::milliseconds(jitter(rng));
}

net::awaitable<Result<void>> HubClient::Send(OutRequest request, BodySink& sink) {
  const bool retry = request.retry.value_or(request.method == http::verb::get ||
                                            request.method == http::verb::head);
  if (!retry) co_return co_await SendOnce(std::move(request), sink);
  ResumeState state;
  int failures = 0;
  for (;;) {
    OutRequest attempt = request;
    if (state.head_sent && !state.PrepareResume(attempt)) co_return Fail(Errc::kResumeFailed);
    Relay relay(sink, state, /*may_retry=*/failures < static_cast<int>(options_.max_retries));
    auto result = co_await SendOnce(std::move(attempt), relay);
    if (result) co_return result;
    const ErrorCode ec = result.error();
    if (relay.sink_failed() || !Retryable(ec)) {
      co_return result;
    }
    failures = relay.progressed() ? 1 : failures + 1;
    if (failures > static_cast<int>(options_.max_retries)) co_return result;
    std::chrono::milliseconds wait = Backoff(failures);
    if (relay.retry_after()) wait = std::min(*relay.retry_after(), retry_policy_.max_retry_after);
    log::Info(log::Module::kProxy, "upstream_retry",
              {{"url", LoggableUrl(*core::ParseUrl(request.url))},
               {"error", ec.message()},
               {"status", relay.status()},
               {"attempt", failures},
               {"resume_at", state.delivered},
               {"wait_ms", wait}});
    net::steady_timer timer(co_await net::this_coro::executor, wait);
    co_await timer.async_wait(net::use_awaitable);
  }
}

net::awaitable<Result<void>> HubClient::SendOnce(OutRequest request, BodySink& sink) {
  if (!core::ParseUrl(request.url)) co_return Fail(Errc::kBadUrl);
  std::string url = request.url;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    auto parsed = core::ParseUrl(url);
    if (!parsed) co_return Fail(Errc::kBadUrl);
    // The token goes only to the Hub it was given for.
    const bool send_token =
        !request.token.empty() && hub_origin_ && Origin::Of(*parsed) == *hub_origin_;
    auto result = co_await Exchange(request, url, send_token, sink);
    if (!result) co_return Fail(result.error());
    if (!result->redirect) co_return Result<void>();
    auto next = ResolveLocation(*parsed, result->location);
    if (!next) co_return Fail(Errc::kBadRedirect);
    log::Debug(log::Module::kProxy, "upstream_redirect",
               {{"status", result->status}, {"to", LoggableUrl(*core::ParseUrl(*next))}});
    if (result->status == 303 ||
        ((result->status == 301 || result->status == 302) &&
         request.method != http::verb::get && request.method != http::verb::head)) {
      request.method = http::verb::get;
      request.body.clear();
    }
    url = std::move(*next);
  }
  co_return Fail(Errc::kTooManyRedirects);
}

net::awaitable<Result<BufferedResponse>> HubClient::Fetch(OutRequest request,
                                                          std::size_t max_body) {
  BufferSink sink(max_body);
  auto sent = co_await Send(std::move(request), sink);
  if (!sent) co_return Fail(sent.error());
  co_return std::move(sink.response);
}

net::awaitable<Result<HubClient::Hop>> HubClient::Exchange(const OutRequest& request,
                                                           const std::string& url,
                                                           bool send_token, BodySink& sink) {
  const core::Url parsed = *core::ParseUrl(url);
  const Origin origin = Origin::Of(parsed);
  // A pooled connection may have been closed by the peer meanwhile; if it
  // fails before any response byte, retry once on a fresh connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto connection = pool_.Take(origin);
    const bool reused = connection != nullptr;
    if (!connection) {
      auto connected = co_await UpstreamConnection::Connect(origin, *tls_, options_.connect_timeout,
                                                            proxy_ ? &*proxy_ : nullptr);
      if (!connected) {
        log::Warn(log::Module::kProxy, "upstream_connect_failed",
                  {{"origin", origin.Key()}, {"error", connected.error().message()}});
        co_return Fail(connected.error());
      }
      connection = std::move(*connected);
      pool_.CountOpened();
    }
    bool response_started = false;
    UpstreamConnection::Tls* tls = connection->secure();
    UpstreamConnection::Tcp* tcp = connection->plain();
    // No co_await inside ?: here: GCC 12 miscompiles it (double destruction).
    Result<Hop> hop = Fail(Errc::kBadUrl);
    if (tls != nullptr) {
      hop = co_await ExchangeOn(*tls, std::move(connection), request, parsed, send_token, sink,
                                response_started);
    } else {
      hop = co_await ExchangeOn(*tcp, std::move(connection), request, parsed, send_token, sink,
                                response_started);
    }
    if (hop || !reused || response_started) co_return hop;
    log::Debug(log::Module::kProxy, "upstream_stale_connection", {{"origin", origin.Key()}});
  }
  co_return Fail(net::error::connection_aborted);
}

template <class Stream>
net::awaitable<Result<HubClient::Hop>> HubClient::ExchangeOn(
    Stream& stream, std::unique_ptr<UpstreamConnection> connection, const OutRequest& request,
    const core::Url& url, bool send_token, BodySink& sink, bool& response_started) {
  // On any early return the connection is destroyed (closed); after a clean
  // keep-alive finish it goes back to the pool.
  auto give_back = [&](bool reusable) {
    if (!reusable) return;
    ++connection->requests;
    pool_.Put(std::move(connection));
  };

  const std::string target =
      (url.path.empty() ? std::string("/") : url.path) + (url.has_query ? "?" + url.query : "");
  http::request<http::string_body> req(request.method, target, 11);
  req.set(http::field::host, url.Authority());
  req.set(http::field::user_agent, kUserAgent);
  for (const auto& [name, value] : request.headers) {
    req.set(beast::string_view(name.data(), name.size()),
            beast::string_view(value.data(), value.size()));
  }
  if (send_token) req.set(http::field::authorization, "Bearer " + request.token.Reveal());
  if (!request.body.empty() || request.method == http::verb::post ||
      request.method == http::verb::put) {
    req.body() = request.body;
    req.prepare_payload();
  }
  req.keep_alive(true);

  ErrorCode ec;
  connection->tcp().expires_after(options_.response_timeout);
  co_await http::async_write(stream, req, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);

  http::response_parser<http::buffer_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  // Not boost::none: Boost 1.74 compares the length against the empty
  // optional and fails every sized body.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (request.method == http::verb::head) parser.skip(true);
  // Beast sizes each socket read by the buffer's free capacity (at least 512
  // bytes): without room reserved, a body arrives 512 bytes per recvmsg and
  // a download tops out near 80 MB/s (bench/RESULTS.md).
  if (connection->read_buffer.capacity() < kSocketReadBytes) {
    connection->read_buffer.reserve(kSocketReadBytes);
  }
  co_await http::async_read_header(stream, connection->read_buffer, parser,
                                   net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  response_started = true;

  auto& message = parser.get();
  const unsigned status = message.result_int();
  Hop hop;
  hop.status = status;
  std::array<std::uint8_t, kReadChunk> chunk_storage;  // lives in the coroutine frame
  std::uint8_t* chunk = chunk_storage.data();

  // A followed redirect's short body is read and dropped, so that the
  // connection can be reused; any other body goes to the sink.
  DrainSink drain(kMaxRedirectBody);
  BodySink* consumer = &sink;
  if (request.follow_redirects && IsRedirect(status)) {
    hop.redirect = true;
    hop.location = std::string(message[http::field::location]);
    consumer = &drain;
  } else {
    ResponseHead head;
    head.status = status;
    head.url = url.ToString();
    for (const auto& field : message) head.fields.insert(field.name_string(), field.value());
    if (auto r = co_await sink.OnHead(head); !r) co_return Fail(r.error());
  }

  while (!parser.is_done()) {
    message.body().data = chunk;
    message.body().size = kReadChunk;
    connection->tcp().expires_after(options_.read_timeout);
    co_await http::async_read(stream, connection->read_buffer, parser,
                              net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t got = kReadChunk - message.body().size;
    if (got > 0) {
      if (auto r = co_await consumer->OnData({chunk, got}); !r) {
        if (hop.redirect) co_return hop;  // an odd, long redirect body: drop the connection
        co_return Fail(r.error());
      }
    }
    if (ec) co_return Fail(ec);
  }
  give_back(message.keep_alive());
  co_return hop;
}

}  // namespace hubcache::proxy
