#include "p2p/cluster_client.h"

#include <limits>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/clock.h"
#include "core/errc.h"
#include "p2p/errc.h"

namespace hubcache::p2p {

bool SplitNodeAddress(std::string_view node, std::string& host, std::string& port) {
  std::size_t colon;
  if (node.starts_with('[')) {
    const std::size_t close = node.find(']');
    if (close == std::string_view::npos || close + 1 >= node.size() || node[close + 1] != ':') {
      return false;
    }
    host = std::string(node.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = node.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    host = std::string(node.substr(0, colon));
  }
  port = std::string(node.substr(colon + 1));
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return !host.empty();
}

namespace {

// Connects to `node` and sends it the signed request; the stream is then
// ready for the answer, its deadline `timeout` from now still running.
net::awaitable<Result<beast::tcp_stream>> SendSigned(const ClusterKey& key, std::string_view self,
                                                     std::string_view node, std::string_view method,
                                                     std::string_view target, std::string_view body,
                                                     std::chrono::milliseconds timeout) {
  std::string host, port;
  if (!SplitNodeAddress(node, host, port)) co_return Fail(core::Errc::kInvalidArgument);
  auto executor = co_await net::this_coro::executor;
  ErrorCode ec;
  net::ip::tcp::resolver resolver(executor);
  // Numeric addresses resolve without a lookup; names go through the
  // resolver's thread, bounded below by the stream's deadline on connect.
  auto endpoints = co_await resolver.async_resolve(host, port,
                                                   net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  co_await stream.async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);

  http::request<http::string_body> request;
  request.method(http::string_to_verb(beast::string_view(method.data(), method.size())));
  request.target(std::string(target));
  request.version(11);
  request.set(http::field::host, std::string(node));
  request.set(http::field::connection, "close");
  const SignedHeaders auth = key.Sign(method, target, body, self, core::UnixSeconds());
  request.set(std::string(kNodeHeader), auth.node);
  request.set(std::string(kTimeHeader), auth.time);
  request.set(std::string(kSignatureHeader), auth.signature);
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = std::string(body);
  request.prepare_payload();
  co_await http::async_write(stream, request, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  co_return std::move(stream);
}

}  // namespace

net::awaitable<Result<ClusterReply>> ClusterClient::Call(std::string_view node,
                                                         std::string_view method,
                                                         std::string_view target, std::string body,
                                                         std::chrono::milliseconds timeout,
                                                         std::size_t max_reply_bytes) const {
  auto opened = co_await SendSigned(key_, self_, node, method, target, body, timeout);
  if (!opened) co_return Fail(opened.error());
  beast::tcp_stream& stream = *opened;
  ErrorCode ec;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_reply_bytes);
  co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  ErrorCode ignored;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  auto& response = parser.get();
  co_return ClusterReply{.status = response.result_int(), .body = std::move(response.body())};
}

net::awaitable<Result<void>> ClusterClient::Stream(std::string_view node, std::string_view target,
                                                  std::uint64_t expected_bytes,
                                                  const ChunkSink& sink,
                                                  std::chrono::milliseconds connect_timeout,
                                                  std::chrono::milliseconds idle_timeout) const {
  auto opened = co_await SendSigned(key_, self_, node, "GET", target, "", connect_timeout);
  if (!opened) co_return Fail(opened.error());
  beast::tcp_stream& stream = *opened;
  ErrorCode ec;
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await http::async_read_header(stream, buffer, parser,
                                   net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  const unsigned status = parser.get().result_int();
  if ((status != 200 && status != 206) || parser.chunked() || !parser.content_length() ||
      *parser.content_length() != expected_bytes) {
    co_return Fail(Errc::kUnexpectedReply);
  }
  // The body is raw bytes of a known length (no chunked coding, checked
  // above): read it straight from the socket in large reads and hand it on
  // in runs of at least kFlush bytes, not a parser's 64 KiB at a time.
  constexpr std::size_t kChunk = 1 << 20;
  constexpr std::size_t kFlush = 256 << 10;
  std::vector<std::uint8_t> chunk(kChunk);
  std::uint64_t received = 0;
  std::size_t filled = 0;
  {
    // Body bytes that arrived with the head.
    const auto head_extra = static_cast<std::size_t>(
        std::min<std::uint64_t>({buffer.size(), expected_bytes, kChunk}));
    net::buffer_copy(net::buffer(chunk.data(), head_extra), buffer.data());
    filled = head_extra;
  }
  while (received + filled < expected_bytes) {
    const auto want = static_cast<std::size_t>(
        std::min<std::uint64_t>(kChunk - filled, expected_bytes - received - filled));
    stream.expires_after(idle_timeout);
    const std::size_t got = co_await stream.async_read_some(
        net::buffer(chunk.data() + filled, want), net::redirect_error(net::use_awaitable, ec));
    filled += got;
    if (ec) break;
    if (filled < kFlush && received + filled < expected_bytes) continue;
    auto written = co_await sink(std::span<const std::uint8_t>(chunk.data(), filled));
    if (!written) co_return Fail(written.error());
    received += filled;
    filled = 0;
  }
  if (filled > 0) {
    auto written = co_await sink(std::span<const std::uint8_t>(chunk.data(), filled));
    if (!written) co_return Fail(written.error());
    received += filled;
  }
  if (ec) co_return Fail(ec);
  if (received != expected_bytes) co_return Fail(Errc::kUnexpectedReply);
  ErrorCode ignored;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  co_return Result<void>();
}

}  // namespace hubcache::p2p
