// Router: maps request paths to hubcache's endpoints.
//
// Today it answers the health endpoints and refuses everything else with the
// Hub's JSON error shape; the Hub routes (resolve, API) join it as they are
// built.
//   GET|HEAD /healthz  200 while the process serves (liveness);
//   GET|HEAD /readyz   200 once the store is open and the listeners are up,
//                      503 before that and while shutting down (readiness: a
//                      load balancer stops sending new clients).
//
// Thread safety: Handle() runs concurrently on many strands; readiness is an
// atomic flag.
#pragma once

#include <atomic>

#include "proxy/exchange.h"

namespace hubcache::proxy {

class Router final : public Handler {
 public:
  net::awaitable<void> Handle(Exchange& exchange) override;

  // Readiness as /readyz reports it; false until set.
  void SetReady(bool ready) { ready_.store(ready); }

 private:
  std::atomic<bool> ready_{false};
};

}  // namespace hubcache::proxy
