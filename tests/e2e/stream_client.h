// StreamGet: a GET that hashes the body as it arrives instead of keeping it,
// and reports how the connection ended. For big blobs, many concurrent
// clients, and cut transfers.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "tests/support/http_client.h"

namespace hubcache::testing {

struct StreamResult {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::uint64_t content_length = 0;
  std::uint64_t body_bytes = 0;
  std::string sha256;    // hex of the body bytes received
  bool complete = false;  // body_bytes == content_length
  bool reset = false;     // the connection ended with RST (or another error), not FIN
  std::chrono::milliseconds head_after{0};  // request sent → response head parsed
  std::string Header(const std::string& lower) const {
    auto it = headers.find(lower);
    return it == headers.end() ? "" : it->second;
  }
};

// Sends `GET target` with `Connection: close` and reads the answer to its end
// (or `timeout`), or until `stop_after` body bytes arrived.
StreamResult StreamGet(std::uint16_t port, const std::string& target, const Headers& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(120),
                       std::uint64_t stop_after = UINT64_MAX,
                       const std::string& host = "127.0.0.1");

}  // namespace hubcache::testing
