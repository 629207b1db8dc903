// Spawn: starts a coroutine that nobody awaits, logging (instead of losing)
// an exception that escapes it.
#pragma once

#include <exception>
#include <string_view>

#include "core/asio.h"
#include "core/log.h"

namespace hubcache::p2p {

template <class Executor>
void Spawn(const Executor& executor, net::awaitable<void> work, std::string_view what) {
  net::co_spawn(executor, std::move(work), [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error(log::Module::kP2p, "task_failed", {{"task", what}, {"error", ex.what()}});
    }
  });
}

}  // namespace hubcache::p2p
