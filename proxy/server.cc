#include "proxy/server.h"

#include <algorithm>
#include <atomic>
#include <random>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/format.h>

#include "core/log.h"
#include "core/url.h"
#include "proxy/exchange.h"

namespace hubcache::proxy {
namespace {

using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// Request bodies are small API payloads (paths-info); anything larger is 413.
constexpr std::uint64_t kMaxRequestBody = 1024 * 1024;
constexpr std::size_t kMaxLoggedTarget = 512;
// After the shutdown deadline closed every connection, how long sessions get
// to unwind before shutdown is reported complete regardless.
constexpr std::chrono::seconds kAbandonGrace(1);

std::string NewRequestId() {
  static std::atomic<std::uint64_t> counter{std::random_device{}()};
  // splitmix64 of a counter: unique within the process, not guessable order.
  std::uint64_t z = counter.fetch_add(0x9e3779b97f4a7c15ULL) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return fmt::format("{:012x}", z & 0xffffffffffffULL);
}

// The path of a request target for logs: no query string (it may carry
// signatures or other credentials), bounded length.
std::string_view LoggedPath(std::string_view target) {
  target = target.substr(0, target.find('?'));
  return target.substr(0, kMaxLoggedTarget);
}

void LogSpawnFailure(std::string_view what, std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log::Error(log::Module::kProxy, "coroutine_failed", {{"what", what}, {"error", e.what()}});
  }
}

// Closes a connection in an orderly way: FIN first, then the descriptor.
void CloseStream(ServerStream& stream) {
  ErrorCode ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

}  // namespace

struct Server::Listener {
  explicit Listener(net::io_context& ioc) : acceptor(net::make_strand(ioc)) {}
  tcp::acceptor acceptor;
  tcp::endpoint endpoint;
};

struct Server::Connection {
  explicit Connection(ServerSocket socket) : stream(std::move(socket)) {}
  ServerStream stream;
  // True while the session waits for the next request. Read and written only
  // on the connection's strand.
  bool idle = true;
};

Server::Server(net::io_context& ioc, const ServerOptions& options, Handler& handler,
               std::vector<net::io_context*> connection_contexts)
    : ioc_(ioc),
      connection_contexts_(std::move(connection_contexts)),
      options_(options),
      handler_(handler) {}

Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(net::io_context& ioc,
                                               const ServerOptions& options, Handler& handler,
                                               std::vector<net::io_context*> connection_contexts) {
  std::unique_ptr<Server> server(
      new Server(ioc, options, handler, std::move(connection_contexts)));
  for (const std::string& address : options.listen) {
    auto parsed = core::ParseListenAddress(address);
    if (!parsed) return Fail(make_error_code(boost::system::errc::invalid_argument));
    ErrorCode ec;
    const auto ip = net::ip::make_address(parsed->host, ec);
    if (ec) return Fail(ec);
    auto listener = std::make_unique<Listener>(ioc);
    const tcp::endpoint endpoint(ip, parsed->port);
    auto& acceptor = listener->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    // [::]:P must not also claim 0.0.0.0:P, so both can be configured.
    if (!ec && parsed->ipv6) acceptor.set_option(net::ip::v6_only(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Fail(ec);
    listener->endpoint = acceptor.local_endpoint(ec);
    if (ec) return Fail(ec);
    server->listeners_.push_back(std::move(listener));
  }
  return server;
}

std::vector<tcp::endpoint> Server::endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& listener : listeners_) out.push_back(listener->endpoint);
  return out;
}

void Server::Start() {
  for (auto& listener : listeners_) {
    {
      std::lock_guard lock(mu_);
      ++accept_loops_running_;
    }
    net::co_spawn(listener->acceptor.get_executor(), AcceptLoop(*listener),
                  [](std::exception_ptr e) { LogSpawnFailure("accept_loop", e); });
  }
}

std::size_t Server::connection_count() const {
  std::lock_guard lock(mu_);
  return connections_.size();
}

net::io_context& Server::NextConnectionContext() {
  if (connection_contexts_.empty()) return ioc_;
  const std::size_t i = next_context_.fetch_add(1, std::memory_order_relaxed);
  return *connection_contexts_[i % connection_contexts_.size()];
}

net::awaitable<void> Server::AcceptLoop(Listener& listener) {
  while (!stopping_) {
    ErrorCode ec;
    ServerSocket socket(net::make_strand(NextConnectionContext().get_executor()));
    co_await listener.acceptor.async_accept(socket, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      if (ec == net::error::operation_aborted || stopping_) break;
      // Out of descriptors or memory: back off briefly instead of spinning.
      log::Warn(log::Module::kProxy, "accept_failed", {{"error", ec.message()}});
      net::steady_timer pause(listener.acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    if (stopping_) {
      socket.close(ec);
      break;
    }
    if (connection_count() >= options_.max_connections) {
      log::Warn(log::Module::kProxy, "connection_refused",
                {{"reason", "max_connections"}, {"limit", options_.max_connections}});
      socket.close(ec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto connection = std::make_shared<Connection>(std::move(socket));
    Register(connection);
    net::co_spawn(connection->stream.get_executor(), Session(connection),
                  [](std::exception_ptr e) { LogSpawnFailure("session", e); });
  }
  {
    std::lock_guard lock(mu_);
    --accept_loops_running_;
  }
  MaybeFinishShutdown();
}

net::awaitable<void> Server::Session(std::shared_ptr<Connection> connection) {
  ServerStream& stream = connection->stream;
  beast::flat_buffer buffer;
  ErrorCode ec;
  for (;;) {
    // Wait for the first byte of the next request under the idle timeout;
    // only while waiting here may shutdown close the connection at once.
    if (buffer.size() == 0) {
      connection->idle = true;
      if (stopping_) break;
      stream.expires_after(options_.idle_timeout);
      const std::size_t n = co_await stream.async_read_some(
          buffer.prepare(4096), net::redirect_error(net::use_awaitable, ec));
      if (ec) break;
      buffer.commit(n);
    }
    connection->idle = false;

    http::request_parser<http::string_body> parser;
    parser.header_limit(options_.max_header_bytes);
    parser.body_limit(kMaxRequestBody);
    stream.expires_after(options_.request_timeout);
    co_await http::async_read(stream, buffer, parser,
                              net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      http::status status = http::status::bad_request;
      std::string_view message = "Malformed HTTP request";
      if (ec == http::error::header_limit) {
        status = http::status::request_header_fields_too_large;
        message = "Request header fields too large";
      } else if (ec == http::error::body_limit) {
        status = http::status::payload_too_large;
        message = "Request body too large";
      } else if (ec.category() != make_error_code(http::error::end_of_stream).category() ||
                 ec == http::error::end_of_stream || ec == http::error::partial_message) {
        break;  // closed, reset or timed out: nobody to answer
      }
      Request bad;
      bad.version(11);
      bad.keep_alive(false);
      Exchange exchange(stream, bad, NewRequestId(), options_.request_timeout);
      co_await exchange.SendError(status, message);
      log::Info(log::Module::kProxy, "request_rejected",
                {{"req", exchange.id()}, {"status", exchange.status()}, {"error", ec.message()}});
      break;
    }

    Request request = parser.release();
    Exchange exchange(stream, request, NewRequestId(), options_.request_timeout, &stopping_);
    const auto start = Clock::now();
    bool failed = false;
    try {
      co_await handler_.Handle(exchange);
    } catch (const std::exception& e) {
      failed = true;
      log::Error(log::Module::kProxy, "handler_failed",
                 {{"req", exchange.id()}, {"error", e.what()}});
    }
    if (!exchange.answered() && !failed) {
      co_await exchange.SendError(http::status::internal_server_error, "Internal error");
    }
    if (log::Enabled(request_log_level_)) {
      log::Event(log::Module::kProxy, request_log_level_, "request",
                {{"req", exchange.id()},
                 {"method", ToStd(request.method_string())},
                 {"path", LoggedPath(ToStd(request.target()))},
                 {"status", exchange.status()},
                 {"bytes", exchange.body_bytes()},
                 {"cache", exchange.cache().empty() ? "-" : exchange.cache()},
                 {"ms", Clock::now() - start}});
    }
    if (failed || !exchange.answered() || !exchange.keep_alive() || stopping_) break;
  }
  CloseStream(stream);
  Unregister(connection);
}

void Server::Register(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mu_);
  connections_.push_back(connection);
}

void Server::Unregister(const std::shared_ptr<Connection>& connection) {
  {
    std::lock_guard lock(mu_);
    auto it = std::find(connections_.begin(), connections_.end(), connection);
    if (it != connections_.end()) connections_.erase(it);
  }
  MaybeFinishShutdown();
}

void Server::Shutdown(std::chrono::milliseconds deadline, std::function<void()> done) {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    on_drained_ = std::move(done);
    deadline_timer_ = std::make_unique<net::steady_timer>(net::make_strand(ioc_), deadline);
    deadline_timer_->async_wait([this](ErrorCode ec) {
      if (ec) return;
      log::Warn(log::Module::kProxy, "shutdown_deadline",
                {{"open_connections", connection_count()}});
      CloseAll();
      // A session suspended on something other than its socket (a timer, a
      // fetch) does not notice the close. Give sessions a moment to unwind,
      // then report drained anyway; the owner stops the io_context.
      deadline_timer_->expires_after(kAbandonGrace);
      deadline_timer_->async_wait([this](ErrorCode ec2) {
        if (ec2) return;
        log::Warn(log::Module::kProxy, "shutdown_abandoned",
                  {{"open_connections", connection_count()}});
        FinishShutdown();
      });
    });
  }
  for (auto& listener : listeners_) {
    net::post(listener->acceptor.get_executor(), [l = listener.get()] {
      ErrorCode ignored;
      l->acceptor.close(ignored);
    });
  }
  CloseIdle();
  MaybeFinishShutdown();
}

void Server::CloseIdle() {
  std::lock_guard lock(mu_);
  for (const auto& connection : connections_) {
    net::post(connection->stream.get_executor(), [connection] {
      if (connection->idle) CloseStream(connection->stream);
    });
  }
}

void Server::CloseAll() {
  std::lock_guard lock(mu_);
  for (const auto& connection : connections_) {
    net::post(connection->stream.get_executor(),
              [connection] { CloseStream(connection->stream); });
  }
}

void Server::MaybeFinishShutdown() {
  {
    std::lock_guard lock(mu_);
    if (!stopping_ || !connections_.empty() || accept_loops_running_ != 0) return;
  }
  FinishShutdown();
}

void Server::FinishShutdown() {
  std::function<void()> done;
  {
    std::lock_guard lock(mu_);
    if (!on_drained_) return;
    done = std::move(on_drained_);
    on_drained_ = nullptr;
    if (deadline_timer_) {
      net::post(deadline_timer_->get_executor(),
                [timer = deadline_timer_.get()] { timer->cancel(); });
    }
  }
  net::post(ioc_, std::move(done));
}

}  // namespace hubcache::proxy
