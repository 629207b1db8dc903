#include "tests/support/http_client.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/asio.h"
#include "core/result.h"

namespace hubcache::testing {
namespace {
using tcp = net::ip::tcp;
using hubcache::ErrorCode;
}  // namespace

struct HttpConnection::Impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
};

HttpConnection::HttpConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpConnection::~HttpConnection() = default;

std::unique_ptr<HttpConnection> HttpConnection::Connect(const std::string& host,
                                                        std::uint16_t port,
                                                        std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  ErrorCode ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) return nullptr;
  impl->stream.expires_after(timeout);
  impl->stream.async_connect(tcp::endpoint(address, port), [&](ErrorCode e) { ec = e; });
  impl->ioc.run();
  impl->ioc.restart();
  if (ec) return nullptr;
  return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(impl)));
}

std::optional<HttpResponse> HttpConnection::Request(const std::string& method,
                                                    const std::string& target,
                                                    const Headers& headers,
                                                    const std::string& body,
                                                    std::chrono::milliseconds timeout) {
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "localhost");
  for (const auto& [name, value] : headers) req.set(name, value);
  if (!body.empty() || method == "POST") {
    req.body() = body;
    req.prepare_payload();
  }
  ErrorCode ec;
  impl_->stream.expires_after(timeout);
  http::async_write(impl_->stream, req, [&](ErrorCode e, std::size_t) { ec = e; });
  impl_->ioc.run();
  impl_->ioc.restart();
  if (ec) return std::nullopt;

  http::response_parser<http::string_body> parser;
  parser.body_limit(1ULL << 32);
  if (method == "HEAD") parser.skip(true);
  http::async_read(impl_->stream, impl_->buffer, parser,
                   [&](ErrorCode e, std::size_t) { ec = e; });
  impl_->ioc.run();
  impl_->ioc.restart();
  if (ec) return std::nullopt;
  auto msg = parser.release();
  HttpResponse out;
  out.status = msg.result_int();
  out.keep_alive = msg.keep_alive();
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value(field.value());
    auto [it, inserted] = out.headers.emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  out.body = std::move(msg.body());
  return out;
}

bool HttpConnection::SendRaw(const std::string& bytes) {
  ErrorCode ec;
  impl_->stream.expires_after(std::chrono::seconds(10));
  net::async_write(impl_->stream, net::buffer(bytes), [&](ErrorCode e, std::size_t) { ec = e; });
  impl_->ioc.run();
  impl_->ioc.restart();
  return !ec;
}

std::pair<std::string, bool> HttpConnection::ReadUntilClose(std::chrono::milliseconds timeout) {
  std::string data(static_cast<const char*>(impl_->buffer.data().data()), impl_->buffer.size());
  impl_->buffer.consume(impl_->buffer.size());
  impl_->stream.expires_after(timeout);
  bool orderly = false;
  for (;;) {
    char chunk[16384];
    ErrorCode ec;
    std::size_t n = 0;
    impl_->stream.async_read_some(net::buffer(chunk), [&](ErrorCode e, std::size_t got) {
      ec = e;
      n = got;
    });
    impl_->ioc.run();
    impl_->ioc.restart();
    data.append(chunk, n);
    if (ec) {
      orderly = ec == net::error::eof;
      break;
    }
  }
  return {data, orderly};
}

std::optional<HttpResponse> HttpRequest(const std::string& host, std::uint16_t port,
                                        const std::string& method, const std::string& target,
                                        const Headers& headers, const std::string& body) {
  auto conn = HttpConnection::Connect(host, port);
  if (!conn) return std::nullopt;
  return conn->Request(method, target, headers, body);
}

}  // namespace hubcache::testing
