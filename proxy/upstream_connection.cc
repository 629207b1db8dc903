#include "proxy/upstream_connection.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace hubcache::proxy {

std::string Origin::Key() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

net::awaitable<Result<std::unique_ptr<UpstreamConnection>>> UpstreamConnection::Connect(
    Origin origin, ssl::context& tls_context, std::chrono::milliseconds timeout) {
  auto executor = co_await net::this_coro::executor;
  std::unique_ptr<UpstreamConnection> conn(new UpstreamConnection(origin));
  const auto deadline = std::chrono::steady_clock::now() + timeout;

  ErrorCode ec;
  net::ip::tcp::resolver resolver(executor);
  net::steady_timer resolve_timer(executor, timeout);
  // The resolver has no deadline of its own: cancel it from a timer.
  resolve_timer.async_wait([&resolver](ErrorCode e) {
    if (!e) resolver.cancel();
  });
  auto endpoints = co_await resolver.async_resolve(origin.host, std::to_string(origin.port),
                                                   net::redirect_error(net::use_awaitable, ec));
  resolve_timer.cancel();
  if (ec) co_return Fail(ec == net::error::operation_aborted ? ErrorCode(beast::error::timeout) : ec);

  auto tcp = std::make_unique<Tcp>(executor);
  tcp->expires_at(deadline);
  co_await tcp->async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  tcp->socket().set_option(net::ip::tcp::no_delay(true), ec);
  ec = {};

  if (!origin.tls) {
    tcp->expires_never();
    conn->tcp_ = std::move(tcp);
    co_return conn;
  }
  auto tls = std::make_unique<Tls>(std::move(*tcp), tls_context);
  // SNI (names only; IP literals are not sent as SNI) and host verification.
  ErrorCode not_ip;
  net::ip::make_address(origin.host, not_ip);
  const bool is_ip = !not_ip;
  if (!is_ip && !SSL_set_tlsext_host_name(tls->native_handle(), origin.host.c_str())) {
    co_return Fail(ErrorCode(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()));
  }
  tls->set_verify_mode(ssl::verify_peer);
  tls->set_verify_callback(ssl::host_name_verification(origin.host));
  beast::get_lowest_layer(*tls).expires_at(deadline);
  co_await tls->async_handshake(ssl::stream_base::client,
                                net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  beast::get_lowest_layer(*tls).expires_never();
  conn->tls_ = std::move(tls);
  co_return conn;
}

void UpstreamConnection::Close() {
  ErrorCode ignored;
  tcp().socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  tcp().socket().close(ignored);
}

Result<std::unique_ptr<ssl::context>> MakeClientTlsContext(const std::string& ca_file) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  ErrorCode ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1,
                       ec);
  if (ec) return Fail(ec);
  if (ca_file.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->load_verify_file(ca_file, ec);
  }
  if (ec) return Fail(ec);
  context->set_verify_mode(ssl::verify_peer, ec);
  if (ec) return Fail(ec);
  return context;
}

}  // namespace hubcache::proxy
