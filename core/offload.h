// Offload: runs blocking work (disk writes, hashing, LMDB) off the event
// loop and resumes the calling coroutine on its own executor.
//
//   auto written = co_await Offload(pool.get_executor(), [&] { return writer.WriteAt(...); });
//
// The callable runs on a thread of `pool` (a net::thread_pool owned by
// daemon/); the caller's coroutine is suspended meanwhile, so references the
// callable captures stay valid. Exceptions propagate to the caller.
#pragma once

#include <type_traits>
#include <utility>

#include "core/asio.h"

namespace hubcache::core {

template <class Executor, class F>
net::awaitable<std::invoke_result_t<F&>> Offload(Executor pool, F fn) {
  using R = std::invoke_result_t<F&>;
  co_return co_await net::co_spawn(
      pool, [fn = std::move(fn)]() mutable -> net::awaitable<R> { co_return fn(); },
      net::use_awaitable);
}

}  // namespace hubcache::core
