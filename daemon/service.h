// Service: the serving machinery of one hubcache process (cache directory
// lock, store, Hub client, proxy parts, HTTP server), wired on an io_context
// that the caller runs. `serve` runs one until a signal; `prefetch` without
// --endpoint runs a private one on 127.0.0.1 and downloads through it, so
// that both take exactly the same path from the Hub to the store.
#pragma once

#include <memory>
#include <string>

#include <tl/expected.hpp>

#include "config/config.h"
#include "core/asio.h"
#include "daemon/cluster_glue.h"
#include "daemon/status_page.h"
#include "p2p/cluster.h"
#include "proxy/access.h"
#include "proxy/fetch.h"
#include "proxy/file_resolver.h"
#include "proxy/hub_client.h"
#include "proxy/hub_routes.h"
#include "proxy/hub_source.h"
#include "proxy/metrics.h"
#include "proxy/router.h"
#include "proxy/server.h"
#include "store/blob_store.h"
#include "store/cache_dir.h"
#include "store/small_blob_cache.h"
#include "store/token_hmac.h"

namespace hubcache::daemon {

class Service {
 public:
  struct Failure {
    std::string event;    // for the log: cache_dir_locked, store_open_failed, ...
    std::string message;  // one sentence for a person
  };

  // The cache directory (locked) and the store. Opened before the
  // io_context and destroyed after it: coroutines still queued when the
  // io_context is destroyed may hold blob writers of this store.
  struct Store {
    std::unique_ptr<store::CacheDir> cache_dir;
    std::unique_ptr<store::BlobStore> blobs;
    store::TokenHmac hmac;
  };
  // Locks the cache directory and opens the store (recovering after a crash).
  static tl::expected<Store, Failure> OpenStore(const config::Config& config);

  // Sets up the Hub client and the proxy and listens on config.server.listen.
  // `ioc` runs downloads and the accept loops; client connections live on
  // `connection_loops` (all on `ioc` when empty; see proxy::Server::Create).
  // With `join_cluster` and a [cluster] section, also starts the libtorrent
  // session and listens on cluster.listen (StartCluster begins the work).
  // `store` and the event loops must outlive the service.
  static tl::expected<std::unique_ptr<Service>, Failure> Create(
      const config::Config& config, Store& store, net::io_context& ioc, unsigned threads,
      std::vector<net::io_context*> connection_loops = {}, bool join_cluster = false);
  // Waits for the blocking pool's work to finish.
  ~Service();

  proxy::Server& server() { return *server_; }
  proxy::Router& router() { return router_; }
  proxy::AccessPolicy& access() { return access_; }
  proxy::FileResolver& files() { return files_; }
  // The cluster, or null when this node is alone.
  p2p::Cluster* cluster() { return cluster_.get(); }
  // Starts serving the cluster API and the cluster's loops (no-op alone).
  void StartCluster();
  // Stops them (the first step of a shutdown).
  void StopCluster();
  // The status page's sampling and its own listener (status.listen), if any.
  void StartStatus();
  void StopStatus();
  // Where the status page's own listener is bound (empty without one).
  std::vector<net::ip::tcp::endpoint> status_endpoints() const;
  store::CacheDir& cache_dir() { return *store_.cache_dir; }
  // Joins the blocking pool (after the event loop stopped).
  void JoinBlocking() { blocking_.join(); }

 private:
  Service(const config::Config& config, net::io_context& ioc, unsigned threads, Store& store,
          std::unique_ptr<proxy::HubClient> client, std::unique_ptr<p2p::Cluster> cluster);

  static std::vector<proxy::BlobSource*> Sources(proxy::BlobSource* peer, proxy::BlobSource* hub);

  Store& store_;
  std::unique_ptr<proxy::HubClient> client_;
  // The cluster (null alone), and its door into the coordinator: peers are
  // asked before the Hub.
  std::unique_ptr<p2p::Cluster> cluster_;
  std::unique_ptr<PeerSource> peer_source_;
  // Disk work (writes, hashing, fsync, LMDB writes) runs here, off the loop.
  net::thread_pool blocking_;
  proxy::Metrics metrics_;
  proxy::AccessPolicy access_;
  // Recently read small blobs, in memory; follows the store's removals.
  store::SmallBlobCache small_blobs_;
  // Where the bytes of a missing blob come from, in order (today the Hub).
  proxy::HubSource hub_source_;
  proxy::FetchCoordinator fetches_;
  proxy::FileResolver files_;
  proxy::HubContext hub_;
  proxy::Router router_;
  std::unique_ptr<proxy::Server> server_;
  std::unique_ptr<ClusterHandler> cluster_handler_;
  std::unique_ptr<proxy::Server> cluster_server_;
  std::unique_ptr<StatusPage> status_page_;
  // The status page alone on status.listen.
  std::unique_ptr<proxy::Router> status_router_;
  std::unique_ptr<proxy::Server> status_server_;
};

}  // namespace hubcache::daemon
