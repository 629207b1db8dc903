// Options of the proxy: the inbound server, the upstream Hub client, caching
// of mutable refs and the access policy. The [server], [upstream], [cache] and
// [access] sections of the configuration fill these structs (config/).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace hubcache::proxy {

using Duration = std::chrono::milliseconds;

struct ServerOptions {
  // Addresses to listen on, each `IPv4:PORT` or `[IPv6]:PORT`. Port 0 picks a
  // free port (tests); the startup log line shows the one bound.
  std::vector<std::string> listen = {"127.0.0.1:8080"};
  // The URL clients use to reach hubcache (`http://host:port[/prefix]`), used
  // when rewriting absolute URLs such as pagination `Link` headers, and whose
  // path prefixes a relayed relative `Location` (a renamed repo). Empty:
  // taken from each request's Host header.
  std::string public_url;
  // Threads running the event loop; 0 means one per CPU core.
  std::uint32_t threads = 0;
  // Connections beyond this are accepted and closed at once, so a flood cannot
  // exhaust file descriptors.
  std::uint32_t max_connections = 4096;
  // Largest request head (request line + headers) accepted; larger is 431.
  std::uint32_t max_header_bytes = 16 * 1024;
  // Time a client has to send a complete request head once it started one.
  Duration request_timeout = std::chrono::seconds(30);
  // Time an idle keep-alive connection stays open waiting for a request.
  Duration idle_timeout = std::chrono::seconds(60);
  // On SIGTERM, in-flight requests get this long to finish before their
  // connections are closed.
  Duration shutdown_timeout = std::chrono::seconds(30);
};

struct UpstreamOptions {
  // The Hub (or a mirror of it); `http://` works for tests and internal
  // mirrors. No trailing slash.
  std::string url = "https://huggingface.co";
  // PEM bundle of CAs to trust instead of the system store. Empty: system.
  std::string ca_file;
  // HTTP CONNECT proxy, `http://[user:pass@]host:port`. Empty: taken from
  // HTTPS_PROXY / HTTP_PROXY (by the upstream's scheme), if set.
  std::string proxy;
  // Comma-separated hosts (and `.domain` suffixes) reached without the proxy.
  // Empty: taken from NO_PROXY, if set.
  std::string no_proxy;
  // Parallel connections (Range requests) used to download one large blob.
  std::uint32_t connections = 8;
  // Size of each ranged chunk; a blob under two chunks uses one connection.
  std::uint64_t chunk_bytes = 8 * 1024 * 1024;
  // Budget for TCP connect plus the TLS handshake.
  Duration connect_timeout = std::chrono::seconds(10);
  // Time from a sent request to its complete response head.
  Duration response_timeout = std::chrono::seconds(30);
  // Longest pause allowed in a response body before the read is abandoned.
  Duration read_timeout = std::chrono::seconds(30);
  // Retries of a failed idempotent request (connect errors, 429, 5xx).
  std::uint32_t max_retries = 5;
  // Never contact the upstream; serve only what is cached.
  bool offline = false;
};

struct CacheOptions {
  // How long a branch or tag → commit mapping is trusted before it is checked
  // with the Hub again. A commit revision never expires.
  Duration ref_ttl = std::chrono::seconds(30);
};

struct AccessOptions {
  // How long an anonymous upstream success marks a repo as public, letting
  // anyone read its cached content.
  Duration public_ttl = std::chrono::minutes(5);
  // How long a token's authorization for a restricted repo, confirmed by the
  // Hub, is trusted before the Hub is asked again.
  Duration grant_ttl = std::chrono::minutes(5);
  // When offline, how much longer than grant_ttl an expired grant is still
  // honoured. 0: expired grants are not honoured offline.
  Duration offline_grant_ttl = std::chrono::seconds(0);
};

struct ProxyOptions {
  // Forward writes (POST/PUT/PATCH/DELETE other than paths-info) to the Hub
  // with the client's token. Off: they get 405, so a cache cannot be used to
  // push to the Hub by accident.
  bool allow_writes = false;
  // A ranged read of a blob that is still downloading ends only once the
  // whole blob is verified, so that no client ever receives a complete
  // answer of wrong bytes (it gets a cut connection and retries). false:
  // the range ends as soon as its own bytes are on disk; a lazy loader's
  // first read of a huge cold file need not wait for all of it, but a
  // corrupt byte from upstream can then reach that client (as it would
  // straight from the Hub; it is never stored).
  bool verified_ranges = true;
};

// The status page at /_hubcache/ (daemon/status_page.h): what the cache
// holds, what it downloads, how the cluster shares.
struct StatusOptions {
  // Served on the client listeners (`server.listen`) under /_hubcache/.
  // Off: those paths answer 404 there.
  bool enabled = false;
  // A listener of its own (`IPv4:PORT` or `[IPv6]:PORT`), off the clients'
  // path: the page is served there whatever `enabled` says. Empty: none.
  std::string listen;
  // A file holding the admin token. A request that carries it (Authorization:
  // Bearer) sees restricted repos' names and downloads; others see counts.
  // Empty: nobody sees them.
  std::string admin_token_file;
};

}  // namespace hubcache::proxy
