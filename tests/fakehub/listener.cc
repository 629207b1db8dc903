#include "tests/fakehub/listener.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/crc.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "tests/fakehub/http_util.h"

namespace hubcache::fakehub {
namespace {

using tcp = net::ip::tcp;

constexpr std::size_t kChunkBytes = 256 * 1024;
constexpr std::size_t kMinPacedChunk = 1024;
constexpr auto kIdleTimeout = std::chrono::minutes(5);
constexpr auto kWriteTimeout = std::chrono::seconds(60);
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
constexpr std::uint64_t kMaxRequestBody = 16 * 1024 * 1024;

void ReportFailure(std::string_view what, std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    fmt::print(stderr, "fakehub: {} failed: {}\n", what, e.what());
  }
}

Reply FaultReply(unsigned status) {
  Reply reply;
  reply.status = status;
  const std::string reason(http::obsolete_reason(static_cast<http::status>(status)));
  reply.Add("Content-Type", "application/json; charset=utf-8");
  if (status == 429) reply.Add("Retry-After", "1");
  reply.body = fmt::format(R"j({{"error":"{} (fault injected by fakehub)"}})j", reason);
  return reply;
}

Reply InternalError(std::string_view what) {
  Reply reply;
  reply.status = 500;
  reply.Add("Content-Type", "application/json; charset=utf-8");
  reply.body = fmt::format(R"({{"error":"fakehub internal error: {}"}})", what);
  return reply;
}

// The ignore_range fault: the whole file instead of the range asked for.
void WholeInstead(Reply& reply) {
  std::erase_if(reply.headers, [](const auto& h) { return h.first == "Content-Range"; });
  reply.status = 200;
  reply.offset = 0;
  reply.length = reply.content->size();
}

// The gzip fault: the body becomes a gzip stream (RFC 1952) of stored
// deflate blocks (RFC 1951 §3.2.4) holding the same bytes.
void Gzip(Reply& reply) {
  std::string plain(static_cast<std::size_t>(reply.BodySize()), '\0');
  reply.ReadBody(0, plain);
  boost::crc_32_type crc;
  crc.process_bytes(plain.data(), plain.size());
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
  auto put16 = [&](std::uint32_t v) {
    out += static_cast<char>(v & 0xff);
    out += static_cast<char>((v >> 8) & 0xff);
  };
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(plain.size() - pos, 65535);
    out += static_cast<char>(pos + n == plain.size() ? 1 : 0);  // BFINAL, BTYPE 00
    put16(static_cast<std::uint32_t>(n));
    put16(static_cast<std::uint32_t>(~n & 0xffff));
    out.append(plain, pos, n);
    pos += n;
  } while (pos < plain.size());
  put16(crc.checksum() & 0xffff);
  put16(crc.checksum() >> 16);
  put16(static_cast<std::uint32_t>(plain.size() & 0xffff));
  put16(static_cast<std::uint32_t>((plain.size() >> 16) & 0xffff));
  reply.content = nullptr;
  reply.body = std::move(out);
  reply.Add("Content-Encoding", "gzip");
}

}  // namespace

struct Listener::Connection {
  Connection(tcp::socket socket, net::ssl::context* tls) : timer(socket.get_executor()) {
    if (tls != nullptr) {
      tls_stream.emplace(std::move(socket), *tls);
    } else {
      tcp_stream.emplace(std::move(socket));
    }
  }

  beast::tcp_stream& lowest() {
    return tls_stream ? beast::get_lowest_layer(*tls_stream) : *tcp_stream;
  }

  // Orderly close: FIN, then the descriptor; wakes every pending operation.
  // Called on the connection's strand only.
  void Close() {
    closed = true;
    timer.cancel();
    ErrorCode ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().socket().close(ignored);
  }

  // Waits until `when`; false if the connection was closed meanwhile.
  net::awaitable<bool> SleepUntil(Clock::time_point when) {
    if (closed) co_return false;
    timer.expires_at(when);
    ErrorCode ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    co_return !closed;
  }

  std::optional<beast::tcp_stream> tcp_stream;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream;
  net::steady_timer timer;
  RateLimiter limiter;  // the per-connection bandwidth limit
  std::vector<char> buffer;
  // Strand-confined, like everything above.
  bool closed = false;
};

Listener::Listener(net::io_context& ioc, std::string name, std::uint16_t port,
                   net::ssl::context* tls, Service& service, Knobs& knobs)
    : ioc_(ioc),
      name_(std::move(name)),
      tls_(tls),
      service_(service),
      knobs_(knobs),
      acceptor_(net::make_strand(ioc)) {
  const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), port);
  ErrorCode ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (!ec) port_ = acceptor_.local_endpoint(ec).port();
  if (ec) {
    throw std::runtime_error(fmt::format("fakehub: cannot listen on 127.0.0.1:{} for the {}: {}",
                                         port, name_, ec.message()));
  }
}

Listener::~Listener() = default;

void Listener::Start() {
  net::co_spawn(acceptor_.get_executor(), AcceptLoop(),
                [](std::exception_ptr e) { ReportFailure("accept loop", e); });
}

void Listener::Stop() {
  std::set<std::shared_ptr<Connection>> connections;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    connections = connections_;
  }
  net::post(acceptor_.get_executor(), [this] {
    ErrorCode ignored;
    acceptor_.close(ignored);
  });
  for (const auto& connection : connections) {
    net::post(connection->lowest().get_executor(), [connection] { connection->Close(); });
  }
}

net::awaitable<void> Listener::AcceptLoop() {
  for (;;) {
    ErrorCode ec;
    tcp::socket socket = co_await acceptor_.async_accept(
        net::make_strand(ioc_), net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) break;
      // Out of descriptors: back off instead of spinning.
      net::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(20));
      co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto connection = std::make_shared<Connection>(std::move(socket), tls_);
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      connections_.insert(connection);
    }
    net::co_spawn(connection->lowest().get_executor(), Session(connection),
                  [](std::exception_ptr e) { ReportFailure("session", e); });
  }
}

net::awaitable<void> Listener::Session(std::shared_ptr<Connection> connection) {
  if (connection->tls_stream) {
    connection->lowest().expires_after(kHandshakeTimeout);
    ErrorCode ec;
    co_await connection->tls_stream->async_handshake(net::ssl::stream_base::server,
                                                     net::redirect_error(net::use_awaitable, ec));
    if (!ec) co_await Serve(*connection->tls_stream, *connection);
  } else {
    co_await Serve(*connection->tcp_stream, *connection);
  }
  connection->Close();
  std::lock_guard lock(mu_);
  connections_.erase(connection);
}

template <class Stream>
net::awaitable<void> Listener::Serve(Stream& stream, Connection& connection) {
  beast::flat_buffer buffer;
  while (!connection.closed) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(kMaxRequestBody);
    connection.lowest().expires_after(kIdleTimeout);
    ErrorCode ec;
    co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      // Closed, reset or timed out: nobody to answer. A malformed request
      // gets the status a front end would give, then the connection closes.
      if (ec.category() != make_error_code(http::error::end_of_stream).category() ||
          ec == http::error::end_of_stream || ec == http::error::partial_message) {
        co_return;
      }
      unsigned status = 400;
      if (ec == http::error::header_limit) status = 431;
      if (ec == http::error::body_limit) status = 413;
      http::response<http::string_body> bad{static_cast<http::status>(status), 11};
      bad.set(http::field::content_type, "application/json; charset=utf-8");
      bad.body() = R"({"error":"Bad request"})";
      bad.keep_alive(false);
      bad.prepare_payload();
      connection.lowest().expires_after(kWriteTimeout);
      co_await http::async_write(stream, bad, net::redirect_error(net::use_awaitable, ec));
      // Send FIN, then drain what the client is still sending for a moment,
      // so the close does not turn into a reset that discards the answer.
      ErrorCode ignored;
      connection.lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      connection.lowest().expires_after(std::chrono::seconds(1));
      char sink[4096];
      while (!ec) {
        co_await connection.lowest().async_read_some(net::buffer(sink),
                                                     net::redirect_error(net::use_awaitable, ec));
      }
      co_return;
    }
    Request request = parser.release();
    Reply reply;
    try {
      reply = service_.Handle(request);
    } catch (const std::exception& e) {
      reply = InternalError(e.what());
    }
    const bool keep_alive = request.keep_alive();
    if (!co_await WriteReply(stream, connection, request, std::move(reply), keep_alive)) co_return;
    if (!keep_alive) co_return;
  }
}

template <class Stream>
net::awaitable<bool> Listener::WriteReply(Stream& stream, Connection& connection,
                                          const Request& request, Reply reply, bool keep_alive) {
  const auto [raw_path, query] = SplitTarget(Sv(request.target()));
  const std::string path = PercentDecode(raw_path).value_or(std::string(raw_path));
  const bool head = request.method() == http::verb::head;

  BodyFaults faults;
  if (!reply.control) {
    if (const auto failed = knobs_.TakeStatusFault(raw_path, path)) {
      reply = FaultReply(failed->status);
      if (failed->delay.count() > 0 &&
          !co_await connection.SleepUntil(Clock::now() + failed->delay)) {
        co_return false;
      }
    } else if (!head && reply.content != nullptr) {
      faults = knobs_.TakeBodyFaults(raw_path, path, reply.offset, reply.length);
      if (faults.ignore_range && reply.status == 206) WholeInstead(reply);
      if (faults.gzip) Gzip(reply);
    }
    const auto latency = knobs_.latency();
    if (latency.count() > 0 && !co_await connection.SleepUntil(Clock::now() + latency)) {
      co_return false;
    }
  }

  http::response<http::empty_body> response{static_cast<http::status>(reply.status),
                                            request.version()};
  response.set(http::field::date, HttpDate());
  for (const auto& [name, value] : reply.headers) response.insert(name, value);
  const std::uint64_t size = reply.BodySize();
  response.content_length(static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, static_cast<std::int64_t>(size) + faults.length_delta)));
  response.keep_alive(keep_alive);

  std::uint64_t to_send = head ? 0 : size;
  bool cut = faults.length_delta > 0;  // the connection ends after this body
  if (faults.short_body) {
    to_send -= 1;
    cut = true;
  }
  if (faults.drop_after >= 0 && static_cast<std::uint64_t>(faults.drop_after) < to_send) {
    to_send = static_cast<std::uint64_t>(faults.drop_after);
    cut = true;
  }
  if (faults.stall) {
    to_send = 0;
    cut = true;
  }

  // The entry goes into the log before the client can see a byte, so a
  // client that got its answer always finds it there; the byte count is
  // corrected if the body then fails.
  LogEntry entry;
  entry.listener = name_;
  entry.method = std::string(request.method_string());
  entry.target = std::string(raw_path);
  entry.status = reply.status;
  entry.body_bytes_sent = to_send;
  entry.range = std::string(request[http::field::range]);
  entry.had_authorization = request.count(http::field::authorization) > 0;
  const std::uint64_t log_id = reply.control ? 0 : knobs_.Begin(entry);
  std::uint64_t sent = 0;
  auto finish = [&] {
    entry.body_bytes_sent = sent;
    if (!reply.control) knobs_.Finish(log_id, entry);
  };

  http::response_serializer<http::empty_body> serializer{response};
  connection.lowest().expires_after(kWriteTimeout);
  ErrorCode ec;
  co_await http::async_write_header(stream, serializer,
                                    net::redirect_error(net::use_awaitable, ec));
  if (ec) {
    finish();
    co_return false;
  }

  if (connection.buffer.empty() && to_send > 0) connection.buffer.resize(kChunkBytes);
  while (sent < to_send) {
    const std::uint64_t conn_rate = knobs_.conn_rate();
    const std::uint64_t total_rate = knobs_.total_rate();
    std::uint64_t chunk = kChunkBytes;
    // Under a limit, chunks of about 1/64 s keep the pace smooth.
    for (std::uint64_t rate : {conn_rate, total_rate}) {
      if (rate != 0) chunk = std::min(chunk, std::max<std::uint64_t>(kMinPacedChunk, rate / 64));
    }
    chunk = std::min(chunk, to_send - sent);
    const std::span<char> out(connection.buffer.data(), static_cast<std::size_t>(chunk));
    reply.ReadBody(sent, out);
    if (faults.flip_offset) {
      const std::uint64_t first = reply.FileOffset(sent);
      if (*faults.flip_offset >= first && *faults.flip_offset - first < chunk) {
        out[static_cast<std::size_t>(*faults.flip_offset - first)] ^= 0x01;
      }
    }
    const auto when = std::max(connection.limiter.Reserve(chunk, conn_rate),
                               knobs_.total_limiter().Reserve(chunk, total_rate));
    if (when > Clock::now() && !co_await connection.SleepUntil(when)) break;
    connection.lowest().expires_after(kWriteTimeout);
    const std::size_t n = co_await net::async_write(stream, net::buffer(out.data(), out.size()),
                                                    net::redirect_error(net::use_awaitable, ec));
    sent += n;
    if (ec) break;
  }
  finish();
  if (sent < to_send) co_return false;

  if (faults.stall) {
    // Hold the connection open, body unsent, until the client gives up or
    // the FakeHub stops (which closes the socket).
    connection.lowest().expires_never();
    char sink[512];
    while (!connection.closed) {
      co_await stream.async_read_some(net::buffer(sink),
                                      net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
    }
  }
  co_return !cut;
}

}  // namespace hubcache::fakehub
