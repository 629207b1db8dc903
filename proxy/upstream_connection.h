// UpstreamConnection: one HTTP/1.1 connection from hubcache to an upstream
// origin (the Hub, its CDN, a mirror), over plain TCP or TLS.
//
// TLS always sets SNI, verifies the peer's chain against the configured CA
// store, and checks the certificate against the host name (or IP literal).
// Connections are owned by one coroutine at a time: borrowed from the
// ConnectionPool, used, and given back (or dropped).
//
// Thread safety: none; one owner at a time. The owner's coroutine may run on
// any executor: completions resume the awaiting coroutine on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

#include "core/asio_ssl.h"
#include "core/result.h"
#include "core/secret.h"
#include "core/url.h"

namespace hubcache::proxy {

// Scheme, host and port: what a connection can be reused for.
struct Origin {
  bool tls = true;
  std::string host;  // lower-case name or IP literal (no brackets)
  std::uint16_t port = 443;

  static Origin Of(const core::Url& url) { return {url.scheme == "https", url.host, url.port}; }
  // "https://host:port", for pool keys and logs.
  std::string Key() const;
  friend bool operator==(const Origin&, const Origin&) = default;
};

// An HTTP CONNECT proxy (upstream.proxy, or HTTPS_PROXY) and the hosts that
// bypass it (upstream.no_proxy / NO_PROXY).
struct ProxySettings {
  core::Url url;                 // http://host:port of the proxy
  Secret authorization;          // "Basic ..." from the URL's user:password, or empty
  std::vector<std::string> no_proxy;  // lower-case host names, .domains, IPs, or "*"

  // Parses `proxy_url` (empty: no proxy) and `no_proxy` (comma-separated).
  // Errors: core::Errc::kInvalidArgument for a URL that is not http://host:port.
  static Result<std::optional<ProxySettings>> Parse(std::string_view proxy_url,
                                                    std::string_view no_proxy);
  // True when `host` must be reached directly.
  bool Bypass(std::string_view host) const;
};

class UpstreamConnection {
 public:
  using Tcp = beast::tcp_stream;
  using Tls = beast::ssl_stream<beast::tcp_stream>;

  // Resolves `origin`, connects (through a CONNECT tunnel when `proxy` is
  // given and the host is not bypassed), and for https completes the TLS
  // handshake with the origin, all within `timeout`. Errors: resolver and
  // connect errors, beast::error::timeout, Errc::kProxyRefused when the proxy
  // does not answer CONNECT with 2xx, TLS errors (a certificate that fails
  // verification gives an ssl category error).
  static net::awaitable<Result<std::unique_ptr<UpstreamConnection>>> Connect(
      Origin origin, ssl::context& tls_context, std::chrono::milliseconds timeout,
      const ProxySettings* proxy = nullptr);

  const Origin& origin() const { return origin_; }
  // The TCP layer, for per-operation deadlines (expires_after).
  beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }
  Tcp* plain() { return tcp_.get(); }
  Tls* secure() { return tls_.get(); }

  // Closes the socket at once (no TLS close_notify: used on errors).
  void Close();

  // Bytes read past the end of the previous response stay here.
  beast::flat_buffer read_buffer;
  // Bookkeeping for the pool.
  std::chrono::steady_clock::time_point idle_since;
  std::uint64_t requests = 0;

 private:
  explicit UpstreamConnection(Origin origin) : origin_(std::move(origin)) {}
  Origin origin_;
  std::unique_ptr<Tcp> tcp_;
  std::unique_ptr<Tls> tls_;
};

// A TLS client context: verify_peer against `ca_file` (PEM) or, if empty, the
// system's default CA store; TLS 1.2 or later. Errors: the file cannot be
// loaded.
Result<std::unique_ptr<ssl::context>> MakeClientTlsContext(const std::string& ca_file);

}  // namespace hubcache::proxy
