// Exchange: one HTTP request on a client connection and the means to answer it.
//
// The server reads a request, wraps it in an Exchange and passes it to the
// Handler; the handler answers exactly once, either with Send() (a complete
// response in memory) or by writing to stream() itself (streaming bodies,
// sendfile) and then calling MarkAnswered(). The server logs one summary line
// per exchange from what is recorded here.
//
// Executor: everything runs on the connection's strand. The Exchange and the
// stream it refers to are owned by the session coroutine and outlive the
// handler's coroutine.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/asio.h"
#include "core/result.h"

namespace hubcache::proxy {

// A client connection's stream, bound to the connection's strand by type (not
// through any_io_executor: every operation on it is cheaper).
using ConnectionExecutor = net::strand<net::io_context::executor_type>;
using ServerStream = beast::basic_stream<net::ip::tcp, ConnectionExecutor>;
using ServerSocket = ServerStream::socket_type;

using Request = http::request<http::string_body>;
using StringResponse = http::response<http::string_body>;

// Beast (Boost 1.74) hands out boost::string_view; everything else takes
// std::string_view.
inline std::string_view ToStd(beast::string_view s) { return {s.data(), s.size()}; }
inline beast::string_view ToBeast(std::string_view s) { return {s.data(), s.size()}; }

class Exchange {
 public:
  // `server_stopping`, if given, is the server's shutdown flag: once it is
  // set, responses carry `Connection: close`. It must outlive the exchange.
  Exchange(ServerStream& stream, Request& request, std::string id,
           std::chrono::milliseconds write_timeout,
           const std::atomic<bool>* server_stopping = nullptr);

  const Request& request() const { return request_; }
  // A short random id for this request, logged as `req=`.
  const std::string& id() const { return id_; }
  bool is_head() const { return request_.method() == http::verb::head; }

  // Writes `response` (for HEAD: its head only, with Content-Length of the
  // body it would have had). Sets version and keep-alive from the request and
  // Content-Length from the body unless the handler set them. Returns the
  // write error, if any; the connection is then unusable.
  // REQUIRES: !answered().
  net::awaitable<ErrorCode> Send(StringResponse response);

  // Writes a JSON error `{"error": message}` with `status`, the way the Hub
  // formats its own errors.
  net::awaitable<ErrorCode> SendError(http::status status, std::string_view message);

  // For handlers that stream a body themselves: writes `head` with version
  // and keep-alive set as Send() does (the handler sets Content-Length or
  // chunked framing), then the handler writes the body to stream() and calls
  // MarkAnswered(). `head` is moved from. Returns the write error, if any.
  net::awaitable<ErrorCode> SendHead(http::response_header<>& head);

  // Ends the connection in an orderly way (FIN, never RST) after a body that
  // could not be completed, so that the client sees a cut transfer and
  // resumes with a Range request. Records the outcome.
  void Abort(unsigned status, std::uint64_t body_bytes);

  // For handlers that write to stream() directly: records the outcome.
  void MarkAnswered(unsigned status, std::uint64_t body_bytes, bool keep_alive);
  ServerStream& stream() { return stream_; }
  std::chrono::milliseconds write_timeout() const { return write_timeout_; }

  // Where the answer's bytes came from (the X-Cache value), for the
  // request's log line.
  void set_cache(std::string_view cache) { cache_.assign(cache.data(), cache.size()); }
  const std::string& cache() const { return cache_; }

  // Tell the server to close the connection after this exchange.
  void set_close() { keep_alive_ = false; }

  bool answered() const { return answered_; }
  unsigned status() const { return status_; }
  std::uint64_t body_bytes() const { return body_bytes_; }
  // Whether the connection may serve another request after this one: the
  // client asked for it, the handler did not refuse it, and the server is not
  // shutting down.
  bool keep_alive() const {
    return keep_alive_ && !(server_stopping_ != nullptr && server_stopping_->load());
  }

 private:
  ServerStream& stream_;
  Request& request_;
  std::string id_;
  std::chrono::milliseconds write_timeout_;
  const std::atomic<bool>* server_stopping_;
  bool answered_ = false;
  unsigned status_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::string cache_;
  bool keep_alive_;
};

// The interface the server calls for each request.
class Handler {
 public:
  virtual ~Handler() = default;
  // Answers `exchange`. Runs on the connection's strand; may suspend. Must
  // answer (Send or MarkAnswered) unless the connection failed; an exchange
  // left unanswered gets a 500. Exceptions close only this connection.
  virtual net::awaitable<void> Handle(Exchange& exchange) = 0;
};

}  // namespace hubcache::proxy
