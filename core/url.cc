#include "core/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace hubcache::core {
namespace {

std::optional<std::uint16_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

bool IsIpv4Literal(const std::string& s) {
  in_addr addr{};
  return ::inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

bool IsIpv6Literal(const std::string& s) {
  in6_addr addr{};
  return ::inet_pton(AF_INET6, s.c_str(), &addr) == 1;
}

bool IsHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
         c == '_';
}

// Splits "host[:port]" or "[v6][:port]" into host and port text.
bool SplitHostPort(std::string_view authority, std::string& host,
                   std::string_view& port, bool& bracketed) {
  bracketed = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    bracketed = true;
    return true;
  }
  const std::size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    host = std::string(authority.substr(0, colon));
    port = authority.substr(colon + 1);
    if (port.empty()) return false;
  } else {
    host = std::string(authority);
  }
  return true;
}

}  // namespace

// (Appends rather than `"literal" + string`: GCC 12 -O3 -Wrestrict misfires
// on the latter.)
std::string Url::Authority() const {
  std::string out;
  if (IsIpv6()) {
    out.append(1, '[').append(host).append(1, ']');
  } else {
    out = host;
  }
  if (explicit_port) out.append(1, ':').append(std::to_string(port));
  return out;
}

std::string Url::ToString() const {
  std::string out = scheme;
  out.append("://").append(Authority()).append(path);
  if (has_query) out.append(1, '?').append(query);
  return out;
}

std::optional<Url> ParseUrl(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return std::nullopt;
    }
  }
  Url url;
  const std::size_t sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  url.scheme = std::string(text.substr(0, sep));
  std::transform(url.scheme.begin(), url.scheme.end(), url.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (url.scheme != "http" && url.scheme != "https") return std::nullopt;
  std::string_view rest = text.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return std::nullopt;

  const std::size_t auth_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view tail =
      auth_end == std::string_view::npos ? std::string_view() : rest.substr(auth_end);
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    url.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  std::string_view port_text;
  bool bracketed = false;
  if (!SplitHostPort(authority, url.host, port_text, bracketed)) return std::nullopt;
  if (url.host.empty()) return std::nullopt;
  if (bracketed) {
    if (!IsIpv6Literal(url.host)) return std::nullopt;
  } else if (!std::all_of(url.host.begin(), url.host.end(), IsHostNameChar)) {
    return std::nullopt;
  }
  std::transform(url.host.begin(), url.host.end(), url.host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (!port_text.empty()) {
    auto port = ParsePort(port_text);
    if (!port || *port == 0) return std::nullopt;
    url.port = *port;
    url.explicit_port = true;
  } else {
    url.port = url.scheme == "https" ? 443 : 80;
  }
  const std::size_t q = tail.find('?');
  url.path = std::string(tail.substr(0, q));
  if (q != std::string_view::npos) {
    url.has_query = true;
    url.query = std::string(tail.substr(q + 1));
  }
  return url;
}

std::optional<HostPort> ParseListenAddress(std::string_view text) {
  HostPort out;
  std::string_view port_text;
  bool bracketed = false;
  if (!SplitHostPort(text, out.host, port_text, bracketed)) return std::nullopt;
  if (port_text.empty()) return std::nullopt;
  auto port = ParsePort(port_text);
  if (!port) return std::nullopt;
  out.port = *port;
  if (bracketed) {
    if (!IsIpv6Literal(out.host)) return std::nullopt;
    out.ipv6 = true;
  } else if (!IsIpv4Literal(out.host)) {
    return std::nullopt;
  }
  return out;
}

}  // namespace hubcache::core
