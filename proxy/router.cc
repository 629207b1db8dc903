#include "proxy/router.h"

namespace hubcache::proxy {

net::awaitable<void> Router::Handle(Exchange& exchange) {
  const Request& request = exchange.request();
  const std::string_view target = ToStd(request.target());
  const std::string_view path = target.substr(0, target.find('?'));
  const bool read = request.method() == http::verb::get || request.method() == http::verb::head;

  if (path == "/healthz" || path == "/readyz") {
    if (!read) {
      co_await exchange.SendError(http::status::method_not_allowed, "Method not allowed");
      co_return;
    }
    const bool ready = path == "/healthz" || ready_.load();
    StringResponse response(ready ? http::status::ok : http::status::service_unavailable,
                            request.version());
    response.set(http::field::content_type, "application/json");
    response.set(http::field::cache_control, "no-store");
    response.body() = path == "/healthz" ? R"({"status":"ok"})"
                      : ready            ? R"({"status":"ready"})"
                                         : R"({"status":"not ready"})";
    co_await exchange.Send(std::move(response));
    co_return;
  }
  co_await exchange.SendError(http::status::not_found, "Not found");
}

}  // namespace hubcache::proxy
