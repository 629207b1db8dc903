// Result<T>: the return type of every synchronous fallible call.
//
// One error type everywhere: boost::system::error_code, which Asio, Beast and
// libtorrent already use. Each module defines its own `Errc` enum and category
// (see core/errc.h for the shared one). Propagate failures with early returns:
//
//   auto fd = OpenFile(path);
//   if (!fd) return tl::make_unexpected(fd.error());
//
// Thread safety: plain values, no shared state.
#pragma once

#include <boost/system/error_code.hpp>
#include <tl/expected.hpp>

namespace hubcache {

using ErrorCode = boost::system::error_code;

template <class T>
using Result = tl::expected<T, ErrorCode>;

// Shorthand for the failure branch: `return Fail(Errc::kNotFound);`.
inline tl::unexpected<ErrorCode> Fail(ErrorCode ec) {
  return tl::unexpected<ErrorCode>(ec);
}

}  // namespace hubcache
