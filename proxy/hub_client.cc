#include "proxy/hub_client.h"

#include <array>
#include <limits>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/log.h"
#include "proxy/errc.h"
#include "proxy/exchange.h"

namespace hubcache::proxy {
namespace {

constexpr std::size_t kReadChunk = 128 * 1024;
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
                     ConnectionPool::Limits limits)
    : options_(options), tls_(std::move(tls)), pool_(limits) {}

Result<std::unique_ptr<HubClient>> HubClient::Create(const UpstreamOptions& options,
                                                     ConnectionPool::Limits pool_limits) {
  auto tls = MakeClientTlsContext(options.ca_file);
  if (!tls) return Fail(tls.error());
  return std::unique_ptr<HubClient>(new HubClient(options, std::move(*tls), pool_limits));
}

net::awaitable<Result<void>> HubClient::Send(OutRequest request, BodySink& sink) {
  auto first = core::ParseUrl(request.url);
  if (!first) co_return Fail(Errc::kBadUrl);
  const Origin token_origin = Origin::Of(*first);
  std::string url = request.url;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    auto parsed = core::ParseUrl(url);
    if (!parsed) co_return Fail(Errc::kBadUrl);
    // The token goes only to the origin it was given for.
    const bool send_token = !request.token.empty() && Origin::Of(*parsed) == token_origin;
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
      auto connected = co_await UpstreamConnection::Connect(origin, *tls_, options_.connect_timeout);
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

  const bool redirect = request.follow_redirects && IsRedirect(status);
  if (redirect) {
    hop.redirect = true;
    hop.location = std::string(message[http::field::location]);
    // Read (and drop) the short redirect body so the connection can be reused.
    std::size_t drained = 0;
    while (!parser.is_done()) {
      message.body().data = chunk;
      message.body().size = kReadChunk;
      connection->tcp().expires_after(options_.read_timeout);
      co_await http::async_read(stream, connection->read_buffer, parser,
                                net::redirect_error(net::use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return Fail(ec);
      drained += kReadChunk - message.body().size;
      if (drained > kMaxRedirectBody) co_return hop;  // closes the connection
    }
    give_back(message.keep_alive());
    co_return hop;
  }

  ResponseHead head;
  head.status = status;
  head.url = url.ToString();
  for (const auto& field : message) head.fields.insert(field.name_string(), field.value());
  if (auto r = co_await sink.OnHead(head); !r) co_return Fail(r.error());

  while (!parser.is_done()) {
    message.body().data = chunk;
    message.body().size = kReadChunk;
    connection->tcp().expires_after(options_.read_timeout);
    co_await http::async_read(stream, connection->read_buffer, parser,
                              net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t got = kReadChunk - message.body().size;
    if (got > 0) {
      if (auto r = co_await sink.OnData({chunk, got}); !r) co_return Fail(r.error());
    }
    if (ec) co_return Fail(ec);
  }
  give_back(message.keep_alive());
  co_return hop;
}

}  // namespace hubcache::proxy
