// Helpers shared by the fake Hub's own tests: plain-HTTP requests against a
// FakeHub through tests/support/http_client.h, URL splitting, and a raw
// socket reader for body-level checks (faults, throughput).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/url.h"
#include "tests/fakehub/fake_hub.h"
#include "tests/support/http_client.h"

namespace hubcache::fakehub::testing {

using hubcache::testing::Headers;
using hubcache::testing::HttpConnection;
using hubcache::testing::HttpResponse;

// Port and "path?query" of an absolute URL (the test fails on garbage).
inline std::pair<std::uint16_t, std::string> SplitUrl(const std::string& url) {
  const auto parsed = core::ParseUrl(url);
  EXPECT_TRUE(parsed.has_value()) << url;
  if (!parsed) return {0, "/"};
  std::string target = parsed->path.empty() ? "/" : parsed->path;
  if (parsed->has_query) target += "?" + parsed->query;
  return {parsed->port, target};
}

// One request on a fresh connection; fails the test if no response came.
inline HttpResponse Fetch(std::uint16_t port, const std::string& method, const std::string& target,
                          const Headers& headers = {}, const std::string& body = {}) {
  auto connection = HttpConnection::Connect("127.0.0.1", port);
  EXPECT_NE(connection, nullptr);
  if (!connection) return {};
  auto response = connection->Request(method, target, headers, body);
  EXPECT_TRUE(response.has_value()) << method << " " << target;
  return response.value_or(HttpResponse{});
}

inline HttpResponse HubGet(const FakeHub& hub, const std::string& target,
                           const Headers& headers = {}) {
  return Fetch(hub.port(), "GET", target, headers);
}
inline HttpResponse HubHead(const FakeHub& hub, const std::string& target,
                            const Headers& headers = {}) {
  return Fetch(hub.port(), "HEAD", target, headers);
}

// GET of an absolute URL (e.g. a CDN Location).
inline HttpResponse GetUrl(const std::string& url, const Headers& headers = {},
                           const std::string& method = "GET") {
  const auto [port, target] = SplitUrl(url);
  return Fetch(port, method, target, headers);
}

// The CDN URL an LFS resolve redirects to.
inline std::string CdnLocation(const FakeHub& hub, const std::string& resolve_target,
                               const Headers& headers = {}) {
  const HttpResponse r = HubHead(hub, resolve_target, headers);
  EXPECT_EQ(r.status, 302u) << resolve_target;
  return r.Header("location");
}

// What a raw exchange produced: everything received until the peer closed
// (or the deadline), split at the end of the head.
struct RawExchange {
  std::string head;
  std::string body;
  bool orderly_close = false;  // FIN (not reset, not timeout)
};

// Sends `request_text` on a new connection and reads until close or timeout.
inline RawExchange RawRequest(std::uint16_t port, const std::string& request_text,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  RawExchange out;
  auto connection = HttpConnection::Connect("127.0.0.1", port);
  EXPECT_NE(connection, nullptr);
  if (!connection) return out;
  EXPECT_TRUE(connection->SendRaw(request_text));
  auto [data, orderly] = connection->ReadUntilClose(timeout);
  out.orderly_close = orderly;
  const auto end = data.find("\r\n\r\n");
  if (end == std::string::npos) {
    out.head = data;
  } else {
    out.head = data.substr(0, end + 4);
    out.body = data.substr(end + 4);
  }
  return out;
}

inline std::string RawGet(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers +
         "Connection: close\r\n\r\n";
}

}  // namespace hubcache::fakehub::testing
