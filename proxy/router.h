// Router: maps request paths to hubcache's endpoints.
//
// Today it answers the health endpoint (`GET|HEAD /healthz`, 200 while the
// process serves) and refuses everything else with the Hub's JSON error
// shape; the Hub routes (resolve, API) join it as they are built.
//
// Thread safety: stateless after construction; Handle() runs concurrently on
// many strands.
#pragma once

#include "proxy/exchange.h"

namespace hubcache::proxy {

class Router final : public Handler {
 public:
  net::awaitable<void> Handle(Exchange& exchange) override;
};

}  // namespace hubcache::proxy
