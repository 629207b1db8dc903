#include "tests/e2e/stream_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <openssl/evp.h>

namespace hubcache::testing {

StreamResult StreamGet(std::uint16_t port, const std::string& target, const Headers& headers,
                       std::chrono::milliseconds timeout, std::uint64_t stop_after,
                       const std::string& host) {
  StreamResult result;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return result;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return result;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    result.reset = true;
    return result;
  }
  std::string request = fmt::format("GET {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n",
                                    target, host, port);
  for (const auto& [name, value] : headers) request += fmt::format("{}: {}\r\n", name, value);
  request += "\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    result.reset = true;
    return result;
  }
  const auto start = std::chrono::steady_clock::now();

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::string head;
  bool in_body = false;
  std::vector<char> buffer(1 << 20);
  while (result.body_bytes < stop_after) {
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n == 0) break;  // FIN
    if (n < 0) {
      if (errno == EINTR) continue;
      result.reset = true;
      break;
    }
    const char* data = buffer.data();
    std::size_t size = static_cast<std::size_t>(n);
    if (!in_body) {
      head.append(data, size);
      const std::size_t end = head.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      result.head_after = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      const std::string rest = head.substr(end + 4);
      head.resize(end);
      result.status = static_cast<unsigned>(std::atoi(head.c_str() + 9));
      std::size_t line = head.find("\r\n");
      while (line != std::string::npos) {
        const std::size_t next = head.find("\r\n", line + 2);
        const std::string field = head.substr(line + 2, next == std::string::npos ? std::string::npos
                                                                                    : next - line - 2);
        const std::size_t colon = field.find(':');
        if (colon != std::string::npos) {
          std::string name = field.substr(0, colon);
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          std::size_t v = colon + 1;
          while (v < field.size() && field[v] == ' ') ++v;
          result.headers[name] = field.substr(v);
        }
        line = next;
      }
      result.content_length = std::strtoull(result.Header("content-length").c_str(), nullptr, 10);
      in_body = true;
      EVP_DigestUpdate(ctx.get(), rest.data(), rest.size());
      result.body_bytes += rest.size();
      continue;
    }
    EVP_DigestUpdate(ctx.get(), data, size);
    result.body_bytes += size;
  }
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  for (unsigned i = 0; i < len; ++i) result.sha256 += fmt::format("{:02x}", digest[i]);
  result.complete = in_body && result.body_bytes == result.content_length;
  return result;
}

}  // namespace hubcache::testing
