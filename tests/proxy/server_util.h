// Test helper: ends an in-process Server the way the daemon does, before its
// io_context stops, so that no session coroutine outlives the server.
#pragma once

#include <chrono>
#include <future>
#include <memory>

#include "proxy/server.h"

namespace hubcache::proxy {

// Closes every connection at once and waits (up to 10 s) until the last
// session has ended. REQUIRES: the server's io_context is running.
inline void StopServerGracefully(Server& server) {
  auto drained = std::make_shared<std::promise<void>>();
  server.Shutdown(std::chrono::milliseconds(0), [drained] { drained->set_value(); });
  drained->get_future().wait_for(std::chrono::seconds(10));
}

}  // namespace hubcache::proxy
