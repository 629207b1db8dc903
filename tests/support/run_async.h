// RunAsync: runs one coroutine to completion on a fresh io_context, under a
// deadline, and returns its result (STYLE.md §9). A coroutine that does not
// finish in time fails the test instead of hanging it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <optional>

#include "core/asio.h"

namespace hubcache::testing {

// Runs on `ioc` (restarted first), for tests whose I/O objects must outlive
// one call, such as pooled connections. Returns as soon as the coroutine
// finished (other work on `ioc` is paused, not cancelled).
template <class T>
T RunAsync(net::io_context& ioc, net::awaitable<T> coroutine,
           std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
  ioc.restart();
  std::optional<T> result;
  std::exception_ptr error;
  net::co_spawn(ioc, std::move(coroutine), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result.emplace(std::move(value));
    ioc.stop();
  });
  ioc.run_for(deadline);
  if (error) std::rethrow_exception(error);
  if (!result) {
    ADD_FAILURE() << "coroutine did not finish within " << deadline.count() << " ms";
    std::abort();
  }
  return std::move(*result);
}

template <class T>
T RunAsync(net::awaitable<T> coroutine,
           std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
  net::io_context ioc;
  return RunAsync(ioc, std::move(coroutine), deadline);
}

}  // namespace hubcache::testing
