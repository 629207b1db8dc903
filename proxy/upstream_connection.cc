#include "proxy/upstream_connection.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <cctype>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "core/errc.h"
#include "core/log.h"
#include "proxy/errc.h"

namespace hubcache::proxy {
namespace {

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace

std::string Origin::Key() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

namespace {

// Opens a TCP connection to host:port by the deadline.
net::awaitable<Result<std::unique_ptr<beast::tcp_stream>>> ConnectTcp(
    const std::string& host, std::uint16_t port,
    std::chrono::steady_clock::time_point deadline) {
  auto executor = co_await net::this_coro::executor;
  ErrorCode ec;
  net::ip::tcp::resolver resolver(executor);
  net::steady_timer resolve_timer(executor, deadline);
  // The resolver has no deadline of its own: cancel it from a timer.
  resolve_timer.async_wait([&resolver](ErrorCode e) {
    if (!e) resolver.cancel();
  });
  auto endpoints = co_await resolver.async_resolve(host, std::to_string(port),
                                                   net::redirect_error(net::use_awaitable, ec));
  resolve_timer.cancel();
  if (ec) {
    co_return Fail(ec == net::error::operation_aborted ? ErrorCode(beast::error::timeout) : ec);
  }
  auto tcp = std::make_unique<beast::tcp_stream>(executor);
  tcp->expires_at(deadline);
  co_await tcp->async_connect(endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  tcp->socket().set_option(net::ip::tcp::no_delay(true), ec);
  co_return tcp;
}

// Asks the proxy on `tcp` for a tunnel to `origin`.
net::awaitable<Result<void>> OpenTunnel(beast::tcp_stream& tcp, const Origin& origin,
                                        const ProxySettings& proxy) {
  const bool v6 = origin.host.find(':') != std::string::npos;
  const std::string authority =
      (v6 ? "[" + origin.host + "]" : origin.host) + ":" + std::to_string(origin.port);
  http::request<http::empty_body> request(http::verb::connect, authority, 11);
  request.set(http::field::host, authority);
  request.set(http::field::user_agent, "hubcache");
  if (!proxy.authorization.empty()) {
    request.set(http::field::proxy_authorization, proxy.authorization.Reveal());
  }
  ErrorCode ec;
  co_await http::async_write(tcp, request, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // a CONNECT answer has no body
  co_await http::async_read_header(tcp, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return Fail(ec);
  const unsigned status = parser.get().result_int();
  if (status / 100 != 2 || buffer.size() != 0) {
    log::Warn(log::Module::kProxy, "proxy_connect_refused",
              {{"proxy", proxy.url.Authority()}, {"status", status}, {"origin", origin.Key()}});
    co_return Fail(Errc::kProxyRefused);
  }
  co_return Result<void>();
}

}  // namespace

net::awaitable<Result<std::unique_ptr<UpstreamConnection>>> UpstreamConnection::Connect(
    Origin origin, ssl::context& tls_context, std::chrono::milliseconds timeout,
    const ProxySettings* proxy) {
  std::unique_ptr<UpstreamConnection> conn(new UpstreamConnection(origin));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ErrorCode ec;

  const bool tunnel = proxy != nullptr && !proxy->Bypass(origin.host);
  // (No co_await inside ?:, which GCC 12 miscompiles.)
  Result<std::unique_ptr<Tcp>> connected = Fail(core::Errc::kUnavailable);
  if (tunnel) {
    connected = co_await ConnectTcp(proxy->url.host, proxy->url.port, deadline);
  } else {
    connected = co_await ConnectTcp(origin.host, origin.port, deadline);
  }
  if (!connected) co_return Fail(connected.error());
  std::unique_ptr<Tcp> tcp = std::move(*connected);
  if (tunnel) {
    if (auto opened = co_await OpenTunnel(*tcp, origin, *proxy); !opened) {
      co_return Fail(opened.error());
    }
  }

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

Result<std::optional<ProxySettings>> ProxySettings::Parse(std::string_view proxy_url,
                                                         std::string_view no_proxy) {
  if (proxy_url.empty()) return std::optional<ProxySettings>();
  auto url = core::ParseUrl(proxy_url);
  if (!url || url->scheme != "http") return Fail(core::Errc::kInvalidArgument);
  ProxySettings settings;
  settings.url = *url;
  if (!url->userinfo.empty()) {
    const std::string credentials = PercentDecode(url->userinfo);
    std::string encoded(4 * ((credentials.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                  reinterpret_cast<const unsigned char*>(credentials.data()),
                                  static_cast<int>(credentials.size()));
    encoded.resize(static_cast<std::size_t>(n));
    settings.authorization = Secret("Basic " + encoded);
  }
  std::string_view rest = no_proxy;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string entry(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (entry.starts_with("[") && entry.ends_with("]")) entry = entry.substr(1, entry.size() - 2);
    for (char& ch : entry) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!entry.empty()) settings.no_proxy.push_back(entry);
  }
  return std::optional<ProxySettings>(std::move(settings));
}

bool ProxySettings::Bypass(std::string_view host) const {
  for (const std::string& entry : no_proxy) {
    if (entry == "*") return true;
    const std::string_view domain =
        entry.starts_with('.') ? std::string_view(entry).substr(1) : std::string_view(entry);
    if (host == domain) return true;
    if (host.size() > domain.size() && host.ends_with(domain) &&
        host[host.size() - domain.size() - 1] == '.') {
      return true;
    }
  }
  return false;
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
