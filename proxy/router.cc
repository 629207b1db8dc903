#include "proxy/router.h"

#include "core/errc.h"
#include "proxy/hub_routes.h"

namespace hubcache::proxy {
namespace {

bool IsRead(const Request& request) {
  return request.method() == http::verb::get || request.method() == http::verb::head;
}

}  // namespace

net::awaitable<void> Router::Handle(Exchange& exchange) {
  const std::string_view route = co_await Dispatch(exchange);
  if (hub_ != nullptr) hub_->metrics.CountRequest(route, exchange.status());
}

net::awaitable<std::string_view> Router::Dispatch(Exchange& exchange) {
  const Request& request = exchange.request();
  const std::string_view target = ToStd(request.target());
  const std::string_view path = target.substr(0, target.find('?'));

  if (path == "/healthz" || path == "/readyz" || (path == "/metrics" && hub_ != nullptr)) {
    if (!IsRead(request)) {
      co_await exchange.SendError(http::status::method_not_allowed, "Method not allowed");
      co_return "health";
    }
    StringResponse response(http::status::ok, request.version());
    response.set(http::field::cache_control, "no-store");
    if (path == "/metrics") {
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response.body() = hub_->metrics.Render(hub_->store, hub_->fetches.running());
      co_await exchange.Send(std::move(response));
      co_return "metrics";
    }
    const bool ready = path == "/healthz" || ready_.load();
    response.result(ready ? http::status::ok : http::status::service_unavailable);
    response.set(http::field::content_type, "application/json");
    response.body() = path == "/healthz" ? R"({"status":"ok"})"
                      : ready            ? R"({"status":"ready"})"
                                         : R"({"status":"not ready"})";
    co_await exchange.Send(std::move(response));
    co_return "health";
  }
  if (path == "/_hubcache" || path.starts_with("/_hubcache/")) {
    // hubcache's own, never the Hub's.
    if (status_ != nullptr) {
      co_await status_->Handle(exchange);
    } else {
      co_await exchange.SendError(http::status::not_found,
                                  "The status page is off here (status.enabled, status.listen)");
    }
    co_return "status";
  }
  if (hub_ == nullptr) {
    co_await exchange.SendError(http::status::not_found, "Not found");
    co_return "unknown";
  }
  if (!path.starts_with('/')) {
    co_await SendJsonError(exchange, 400, "Invalid request target", CacheStatus::kMiss);
    co_return "invalid";
  }

  const bool resolve_cache = path.starts_with("/api/resolve-cache/");
  auto file = resolve_cache ? ParseResolveCachePath(path) : ParseResolvePath(path);
  if (file || resolve_cache || file.error() == core::Errc::kInvalidArgument) {
    const std::string_view route = resolve_cache ? "resolve_cache" : "resolve";
    if (!file) {
      co_await SendJsonError(exchange, 400, "Invalid repository, revision or file path",
                             CacheStatus::kMiss);
    } else if (!IsRead(request)) {
      co_await SendJsonError(exchange, 405, "Method not allowed", CacheStatus::kMiss);
    } else {
      co_await ServeFile(*hub_, exchange, std::move(*file));
    }
    co_return route;
  }
  if (path.starts_with("/api/")) {
    co_await ServeApi(*hub_, exchange);
    co_return "api";
  }
  co_await ServePassthrough(*hub_, exchange);
  co_return "passthrough";
}

}  // namespace hubcache::proxy
