// Server: the inbound HTTP/1.1 server clients (and HF_ENDPOINT) talk to.
//
// It binds every configured listen address, accepts connections, and runs one
// session coroutine per connection on its own strand. A session reads
// requests with limits (header size, request and idle timeouts), hands each
// to the Handler and keeps the connection alive between requests. Connections
// beyond server.max_connections are closed as soon as they are accepted.
//
// Shutdown is graceful: Shutdown() stops accepting, closes idle keep-alive
// connections at once, lets requests in flight finish, and closes whatever is
// left when the deadline passes. When the last session has ended, the server
// holds no more work on the io_context.
//
// Thread safety: Create() and Start() before the io_context runs; Shutdown()
// and the accessors from any thread. Destroy the server only after the
// io_context has stopped, and before the io_context itself.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/asio.h"
#include "core/log.h"
#include "core/result.h"
#include "proxy/options.h"

namespace hubcache::proxy {

class Handler;

class Server {
 public:
  // Binds all of `options.listen`. Errors: the bind/listen error of the first
  // address that failed (address in use, permission denied), after which
  // nothing stays bound. `ioc` and `handler` must outlive the server.
  //
  // `ioc` runs the accept loops and the shutdown timer. Client connections
  // are spread round-robin over `connection_contexts` (each typically run by
  // one thread of its own, so a connection's work never crosses threads or
  // contends on a shared scheduler), or all live on `ioc` when it is empty.
  // They must outlive the server too.
  static Result<std::unique_ptr<Server>> Create(
      net::io_context& ioc, const ServerOptions& options, Handler& handler,
      std::vector<net::io_context*> connection_contexts = {});
  ~Server();

  // The bound addresses, with ports resolved when port 0 was configured.
  std::vector<net::ip::tcp::endpoint> endpoints() const;

  // Starts the accept loops.
  void Start();

  // The level of the one line logged per request (default info). The
  // cluster API logs at debug: its health checks come several times a second.
  // Call before Start().
  void SetRequestLogLevel(log::Level level) { request_log_level_ = level; }

  // Begins a graceful shutdown; only the first call has an effect. In-flight
  // requests get `deadline` to finish; then remaining connections are closed.
  // `done` is called once, from an io_context thread, after the last
  // connection ended, or a second after the deadline if some session is
  // still suspended elsewhere; the owner should then stop the io_context.
  void Shutdown(std::chrono::milliseconds deadline, std::function<void()> done);

  // Open client connections right now.
  std::size_t connection_count() const;

  struct Connection;  // defined in server.cc

 private:
  struct Listener;
  Server(net::io_context& ioc, const ServerOptions& options, Handler& handler,
         std::vector<net::io_context*> connection_contexts);
  // Where the next accepted connection lives.
  net::io_context& NextConnectionContext();

  net::awaitable<void> AcceptLoop(Listener& listener);
  net::awaitable<void> Session(std::shared_ptr<Connection> connection);
  void Register(const std::shared_ptr<Connection>& connection);
  void Unregister(const std::shared_ptr<Connection>& connection);
  void CloseIdle();
  void CloseAll();
  void MaybeFinishShutdown();
  void FinishShutdown();

  net::io_context& ioc_;
  const std::vector<net::io_context*> connection_contexts_;
  std::atomic<std::size_t> next_context_{0};
  const ServerOptions options_;
  Handler& handler_;
  log::Level request_log_level_ = log::Level::kInfo;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<Connection>> connections_;
  std::function<void()> on_drained_;  // GUARDED_BY(mu_)
  std::unique_ptr<net::steady_timer> deadline_timer_;
  std::size_t accept_loops_running_ = 0;  // GUARDED_BY(mu_)
};

}  // namespace hubcache::proxy
