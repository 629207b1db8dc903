// Listener: one HTTP/1.1 server socket of the fake Hub (the hub or the CDN).
//
// It accepts on 127.0.0.1, optionally does a TLS handshake, and runs one
// session coroutine per connection on its own strand. A session reads
// requests (keep-alive), asks its Service for a Reply, then writes it the way
// the knobs say: a status fault replaces the reply, latency delays the head,
// the body goes out in chunks of up to 256 KiB filled straight from the
// content, paced by the per-connection and total rate limiters, and body
// faults cut, stall, shorten or corrupt it. Each answered request (except
// control requests) is recorded in the log.
//
// Thread safety: Start() once; Stop() from any thread. Stop() closes the
// acceptor and every connection on their strands; sessions then unwind and
// the io_context runs out of work. The Service, Knobs, TLS context and
// io_context must outlive the Listener.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/asio.h"
#include "core/result.h"
#include "tests/fakehub/knobs.h"
#include "tests/fakehub/reply.h"

namespace boost::asio::ssl {
class context;
}

namespace hubcache::fakehub {

using Request = http::request<http::string_body>;

// Beast's string_view (boost::string_view in Boost 1.74) as std::string_view.
inline std::string_view Sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

// Answers requests of one listener. Handle() runs on a session's strand and
// must not block; it may be called from several threads at once.
class Service {
 public:
  virtual ~Service() = default;
  virtual Reply Handle(const Request& request) = 0;
};

class Listener {
 public:
  // Binds 127.0.0.1:`port` (0: any free port). `tls` may be null (plain
  // HTTP). Throws std::runtime_error if the port cannot be bound.
  Listener(net::io_context& ioc, std::string name, std::uint16_t port, net::ssl::context* tls,
           Service& service, Knobs& knobs);
  ~Listener();

  std::uint16_t port() const { return port_; }
  void Start();
  void Stop();

  struct Connection;  // listener.cc

 private:
  net::awaitable<void> AcceptLoop();
  net::awaitable<void> Session(std::shared_ptr<Connection> connection);
  template <class Stream>
  net::awaitable<void> Serve(Stream& stream, Connection& connection);
  template <class Stream>
  net::awaitable<bool> WriteReply(Stream& stream, Connection& connection, const Request& request,
                                  Reply reply, bool keep_alive);

  net::io_context& ioc_;
  const std::string name_;
  net::ssl::context* const tls_;
  Service& service_;
  Knobs& knobs_;
  net::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;

  std::mutex mu_;
  bool stopping_ = false;                              // GUARDED_BY(mu_)
  std::set<std::shared_ptr<Connection>> connections_;  // GUARDED_BY(mu_)
};

}  // namespace hubcache::fakehub
