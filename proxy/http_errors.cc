#include "proxy/http_errors.h"

#include <boost/beast/core/error.hpp>

#include "core/errc.h"
#include "proxy/errc.h"

namespace hubcache::proxy {

unsigned HttpStatusFor(const ErrorCode& ec) {
  if (ec == boost::beast::error::timeout || ec == boost::system::errc::timed_out) return 504;
  if (ec == Errc::kAccessRefused) return 403;
  if (ec == Errc::kOffline || ec == Errc::kSourceUnavailable || ec == Errc::kDownloadUnreadable ||
      ec == core::Errc::kUnavailable) {
    return 503;
  }
  return 502;
}

}  // namespace hubcache::proxy
