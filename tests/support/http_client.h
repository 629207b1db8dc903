// A small blocking HTTP/1.1 client for tests (Beast over plain TCP).
//
// Each call has a deadline; a test never hangs on a server that misbehaves.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hubcache::testing {

struct HttpResponse {
  unsigned status = 0;
  // Header names in lower case; repeated headers joined with ", ".
  std::map<std::string, std::string> headers;
  std::string body;
  bool keep_alive = false;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One keep-alive connection.
class HttpConnection {
 public:
  static std::unique_ptr<HttpConnection> Connect(
      const std::string& host, std::uint16_t port,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpConnection();

  // Sends a request and reads the response (for HEAD, without body). Returns
  // nullopt if the connection failed or the deadline passed.
  std::optional<HttpResponse> Request(const std::string& method, const std::string& target,
                                      const Headers& headers = {}, const std::string& body = {},
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Writes raw bytes.
  bool SendRaw(const std::string& bytes);
  // Reads until the peer closes (or the deadline); returns what arrived and
  // whether the close was an orderly EOF (FIN) rather than a reset.
  std::pair<std::string, bool> ReadUntilClose(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit HttpConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
std::optional<HttpResponse> HttpRequest(const std::string& host, std::uint16_t port,
                                        const std::string& method, const std::string& target,
                                        const Headers& headers = {}, const std::string& body = {});

}  // namespace hubcache::testing
