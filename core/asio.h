// The one way to include Asio: everything async in hubcache includes this.
//
// GCC 12 with Boost 1.74 needs <utility> before Asio's awaitable.hpp, and the
// libtorrent compile defines (BOOST_ASIO_ENABLE_CANCELIO, ...) come from the
// build for every target. This header also defines the namespace aliases
// `net`, `beast` and `http` used across proxy/, p2p/ and daemon/. Beast itself
// is heavy; only the .cc files that use it include its headers.
#pragma once

#include <utility>  // must precede Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace boost::beast::http {}

namespace hubcache {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

// An io_context that can destroy what is still queued or suspended on it
// (coroutine frames, handlers) before the objects they refer to are gone:
// a program whose long-lived objects are made after its loop calls
// Shutdown() once the loop has stopped and before those objects die.
class EventLoop : public net::io_context {
 public:
  using net::io_context::io_context;
  void Shutdown() { net::execution_context::shutdown(); }
};
}  // namespace hubcache
