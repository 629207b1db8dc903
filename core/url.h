// Parsing of the absolute http(s) URLs hubcache deals with (upstream, proxy,
// public URL, redirect targets) and of listen addresses.
//
// Deliberately small: only `http` and `https`, hosts as names, IPv4 or
// bracketed IPv6 literals. No percent-decoding happens here; path and query
// stay exactly as written so that a re-serialised URL matches the original.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hubcache::core {

struct Url {
  std::string scheme;    // "http" or "https", lower-case
  std::string userinfo;  // "user:pass" or empty (without the '@')
  std::string host;      // name or IP literal, without brackets, lower-case
  std::uint16_t port = 0;      // explicit or the scheme default
  bool explicit_port = false;  // true if the URL spelled a port
  std::string path;      // starts with '/' or is empty
  std::string query;     // without the '?', may be empty
  bool has_query = false;

  bool IsIpv6() const { return host.find(':') != std::string::npos; }
  // "host" or "[v6]" plus ":port" when explicit; the form a Host header takes.
  std::string Authority() const;
  // scheme://authority/path?query (userinfo omitted).
  std::string ToString() const;
};

// Parses `text` as an absolute http or https URL. Returns nullopt for other
// schemes, a missing or malformed host, a bad port, a fragment, or bytes
// outside printable ASCII.
std::optional<Url> ParseUrl(std::string_view text);

struct HostPort {
  std::string host;  // IP literal, without brackets
  std::uint16_t port = 0;
  bool ipv6 = false;
};

// Parses a listen address: `IPv4:PORT` or `[IPv6]:PORT` with numeric literals
// only (no names, so the bound address is exactly what was configured).
std::optional<HostPort> ParseListenAddress(std::string_view text);

}  // namespace hubcache::core
