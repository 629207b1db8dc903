// The adapters between proxy/ and p2p/, which never include each other
// (DESIGN.md "Modules"):
//
//   PeerSource      a proxy::BlobSource that fetches a missing blob from the
//                   nodes of the cluster that hold it (p2p::Cluster::Fetch),
//                   or, when none does, streams it from its leader, which
//                   fetches it from the Hub once for the whole cluster
//                   (p2p::Cluster::FetchFromLeader); the coordinator asks it
//                   before the Hub.
//   ClusterHandler  a proxy::Handler that serves the cluster API on the
//                   cluster listen address: p2p::Cluster::Handle, and the two
//                   routes that need the fetch coordinator: a leader's fetch
//                   on behalf of another node (POST /_cluster/v1/fetch) and
//                   the stream of a blob, stored or still arriving
//                   (GET /_cluster/v1/blob/HEX?from=N).
//   ClusterMetrics  the cluster's counters in the Prometheus text format.
#pragma once

#include <string>
#include <string_view>

#include "p2p/cluster.h"
#include "proxy/blob_source.h"
#include "proxy/exchange.h"
#include "proxy/fetch.h"

namespace hubcache::daemon {

class PeerSource final : public proxy::BlobSource {
 public:
  // `upstream_url`: the Hub this node asks (config upstream.url); the leader
  // is told the file's path under it.
  PeerSource(p2p::Cluster& cluster, std::string upstream_url)
      : cluster_(cluster), upstream_url_(std::move(upstream_url)) {}
  std::string_view name() const override { return "peer"; }
  proxy::CacheStatus served_as() const override { return proxy::CacheStatus::kPeer; }
  net::awaitable<Result<void>> Fill(const proxy::BlobRequest& request,
                                    proxy::BlobSink& sink) override;

 private:
  p2p::Cluster& cluster_;
  const std::string upstream_url_;
};

class ClusterHandler final : public proxy::Handler {
 public:
  // `blocking`: the pool for disk work (core/offload.h).
  ClusterHandler(p2p::Cluster& cluster, proxy::FetchCoordinator& fetches, store::BlobStore& store,
                 std::string upstream_url, net::any_io_executor blocking)
      : cluster_(cluster), fetches_(fetches), store_(store),
        upstream_url_(std::move(upstream_url)), blocking_(std::move(blocking)) {}
  net::awaitable<void> Handle(proxy::Exchange& exchange) override;

 private:
  net::awaitable<void> ColdFetch(proxy::Exchange& exchange, const p2p::ClusterRequest& request);
  // `node`: the asker's cluster address, for the traffic per member.
  net::awaitable<void> StreamBlob(proxy::Exchange& exchange, std::string_view hex,
                                  std::uint64_t from, const std::string& node);
  // Takes a stored blob that cannot be read back out of the store.
  net::awaitable<void> Quarantine(store::Digest digest, ErrorCode why);

  p2p::Cluster& cluster_;
  proxy::FetchCoordinator& fetches_;
  store::BlobStore& store_;
  const std::string upstream_url_;
  net::any_io_executor blocking_;
};

std::string ClusterMetrics(const p2p::Cluster& cluster);

}  // namespace hubcache::daemon
