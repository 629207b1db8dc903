#include "proxy/errc.h"

#include <string>

namespace hubcache::proxy {
namespace {

class ProxyCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "hubcache.proxy"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::kOk: return "ok";
      case Errc::kTooManyRedirects: return "too many redirects";
      case Errc::kBadRedirect: return "redirect without a usable Location";
      case Errc::kBadUrl: return "unusable URL";
      case Errc::kBodyTooLarge: return "response body too large";
      case Errc::kResumeFailed: return "resumed download did not continue where it stopped";
      case Errc::kRetryableStatus: return "upstream answered with a retryable status";
      case Errc::kProxyRefused: return "the HTTP proxy refused the CONNECT tunnel";
      case Errc::kUnexpectedStatus: return "the upstream answered the download with an unexpected status";
      case Errc::kUrlExpired: return "the signed download URL expired";
      case Errc::kSourceUnavailable: return "no source could supply the blob";
      case Errc::kOffline: return "offline, and the answer is not cached";
      case Errc::kDownloadUnreadable: return "the download in progress cannot be read";
      case Errc::kAccessRefused: return "the Hub refused access to the file";
    }
    return "unknown proxy error";
  }
};

}  // namespace

const boost::system::error_category& Category() {
  static const ProxyCategory category;
  return category;
}

}  // namespace hubcache::proxy
