// Errors of the proxy module (proxy::Errc) and their category.
#pragma once

#include <boost/system/error_code.hpp>
#include <type_traits>

namespace hubcache::proxy {

enum class Errc {
  kOk = 0,
  kTooManyRedirects = 1,  // more redirect hops than allowed (or a loop)
  kBadRedirect,           // a redirect without a usable Location
  kBadUrl,                // a URL hubcache cannot request (scheme, host)
  kBodyTooLarge,          // a buffered response exceeded its limit
  kResumeFailed,          // a resumed body did not continue where it stopped
  kRetryableStatus,       // internal: a 429/5xx answer that will be retried
  kProxyRefused,          // the HTTP proxy did not open a CONNECT tunnel
  kUnexpectedStatus,      // the upstream answered a download with an unusable status
  kUrlExpired,            // internal: a signed download URL expired (403/410)
  kSourceUnavailable,     // a blob source does not have the blob (the next one is asked)
  kOffline,               // offline (or the Hub unreachable) and the answer is not cached
  kDownloadUnreadable,    // a download in progress could not be opened for reading
  kAccessRefused,         // the Hub refused the request's token (401/403) for the file
};

const boost::system::error_category& Category();

inline boost::system::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), Category()};
}

}  // namespace hubcache::proxy

namespace boost::system {
template <>
struct is_error_code_enum<hubcache::proxy::Errc> : std::true_type {};
}  // namespace boost::system
