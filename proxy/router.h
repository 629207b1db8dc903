// Router: maps request paths to hubcache's endpoints.
//
//   GET|HEAD /healthz   200 while the process serves (liveness);
//   GET|HEAD /readyz    200 once the store is open and the listeners are up,
//                       503 before that and while shutting down (readiness);
//   GET|HEAD /metrics   Prometheus text (proxy/metrics.h);
//   /_hubcache/...      the status page's handler when set, else 404;
//   /api/resolve-cache/..., /{repo}/resolve/...   ServeFile
//   /api/...                                      ServeApi
//   anything else                                 ServePassthrough
// (proxy/hub_routes.h). Without a HubContext (tests of the server mechanics)
// only the health endpoints exist and everything else is a JSON 404.
//
// Thread safety: Handle() runs concurrently on many strands; readiness is an
// atomic flag.
#pragma once

#include <atomic>
#include <string_view>

#include "proxy/exchange.h"

namespace hubcache::proxy {

struct HubContext;

class Router final : public Handler {
 public:
  explicit Router(HubContext* hub = nullptr) : hub_(hub) {}

  net::awaitable<void> Handle(Exchange& exchange) override;

  // Readiness as /readyz reports it; false until set.
  void SetReady(bool ready) { ready_.store(ready); }
  // Who answers /_hubcache and /_hubcache/... (the status page, when
  // status.enabled); null: those paths are a JSON 404. Set before serving.
  void SetStatusPage(Handler* status) { status_ = status; }

 private:
  net::awaitable<std::string_view> Dispatch(Exchange& exchange);

  HubContext* const hub_;
  Handler* status_ = nullptr;
  std::atomic<bool> ready_{false};
};

}  // namespace hubcache::proxy
