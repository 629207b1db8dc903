// The adapters between proxy/ and p2p/, which never include each other
// (DESIGN.md "Modules"):
//
//   PeerSource      a proxy::BlobSource that fetches a missing blob from the
//                   nodes of the cluster that hold it (p2p::Cluster::Fetch);
//                   the coordinator asks it before the Hub.
//   ClusterHandler  a proxy::Handler that serves the cluster API
//                   (p2p::Cluster::Handle) on the cluster listen address.
//   ClusterMetrics  the cluster's counters in the Prometheus text format.
#pragma once

#include <string>
#include <string_view>

#include "p2p/cluster.h"
#include "proxy/blob_source.h"
#include "proxy/exchange.h"

namespace hubcache::daemon {

class PeerSource final : public proxy::BlobSource {
 public:
  explicit PeerSource(p2p::Cluster& cluster) : cluster_(cluster) {}
  std::string_view name() const override { return "peer"; }
  proxy::CacheStatus served_as() const override { return proxy::CacheStatus::kPeer; }
  net::awaitable<Result<void>> Fill(const proxy::BlobRequest& request,
                                    proxy::BlobSink& sink) override;

 private:
  p2p::Cluster& cluster_;
};

class ClusterHandler final : public proxy::Handler {
 public:
  explicit ClusterHandler(p2p::Cluster& cluster) : cluster_(cluster) {}
  net::awaitable<void> Handle(proxy::Exchange& exchange) override;

 private:
  p2p::Cluster& cluster_;
};

std::string ClusterMetrics(const p2p::Cluster& cluster);

}  // namespace hubcache::daemon
