#include "daemon/service.h"

#include <fmt/format.h>

#include "core/errc.h"

namespace hubcache::daemon {

tl::expected<Service::Store, Service::Failure> Service::OpenStore(const config::Config& config) {
  using Unexpected = tl::unexpected<Failure>;
  // 1. The cache directory, held exclusively by this process.
  auto cache_dir = store::CacheDir::Open(config.store.cache_dir);
  if (!cache_dir) {
    if (cache_dir.error() == core::Errc::kLocked) {
      const auto holder = store::CacheDir::HolderPid(config.store.cache_dir);
      return Unexpected(Failure{
          "cache_dir_locked",
          fmt::format("cache directory {} is in use by another hubcache process{}; stop it "
                      "or choose another --cache-dir",
                      config.store.cache_dir,
                      holder ? fmt::format(" (pid {})", *holder) : std::string())});
    }
    return Unexpected(Failure{"cache_dir_failed",
                              fmt::format("cannot open cache directory {}: {}",
                                          config.store.cache_dir, cache_dir.error().message())});
  }
  // 2. The store: blob files and index, made consistent after any crash.
  auto store = store::BlobStore::Open(config.store);
  if (!store) {
    return Unexpected(Failure{"store_open_failed",
                              fmt::format("cannot open the store in {}: {}",
                                          config.store.cache_dir, store.error().message())});
  }
  auto hmac = store::TokenHmac::LoadOrCreate(config.store.cache_dir);
  if (!hmac) {
    return Unexpected(Failure{"secret_failed",
                              fmt::format("cannot read or create the install secret in {}: {}",
                                          config.store.cache_dir, hmac.error().message())});
  }
  return Store{std::move(*cache_dir), std::move(*store), *hmac};
}

tl::expected<std::unique_ptr<Service>, Service::Failure> Service::Create(
    const config::Config& config, Store& store, net::io_context& ioc, unsigned threads,
    std::vector<net::io_context*> connection_loops) {
  using Unexpected = tl::unexpected<Failure>;
  // 3. The Hub client.
  auto client = proxy::HubClient::Create(config.upstream);
  if (!client) {
    return Unexpected(Failure{"upstream_failed", fmt::format("cannot set up the Hub client: {}",
                                                             client.error().message())});
  }
  std::unique_ptr<Service> service(
      new Service(config, ioc, threads, store, std::move(*client)));
  // 4. The HTTP server.
  auto server =
      proxy::Server::Create(ioc, config.server, service->router_, std::move(connection_loops));
  if (!server) {
    std::string addresses;
    for (const auto& a : config.server.listen) addresses += (addresses.empty() ? "" : ", ") + a;
    return Unexpected(Failure{"listen_failed", fmt::format("cannot listen on {}: {}", addresses,
                                                           server.error().message())});
  }
  service->server_ = std::move(*server);
  return service;
}

Service::Service(const config::Config& config, net::io_context& ioc, unsigned threads,
                 Store& store, std::unique_ptr<proxy::HubClient> client)
    : store_(store),
      client_(std::move(client)),
      blocking_(std::max(2u, threads)),
      access_(store_.blobs->index(), store_.hmac, config.access),
      small_blobs_(*store_.blobs),
      hub_source_(*client_, {.connections = config.upstream.connections,
                             .chunk_bytes = config.upstream.chunk_bytes}),
      fetches_(*store_.blobs, {&hub_source_}, ioc.get_executor(), blocking_.get_executor()),
      files_(*client_, store_.blobs->index(), access_, metrics_, blocking_.get_executor(),
             config.upstream.url, config.upstream.offline, config.cache),
      hub_{.client = *client_,
           .store = *store_.blobs,
           .small_blobs = small_blobs_,
           .fetches = fetches_,
           .files = files_,
           .access = access_,
           .metrics = metrics_,
           .blocking = blocking_.get_executor(),
           .upstream_url = config.upstream.url,
           .public_url = config.server.public_url,
           .options = config.proxy},
      router_(&hub_) {
  fetches_.set_metrics(&metrics_);
}

Service::~Service() {
  server_.reset();
  blocking_.join();
}

}  // namespace hubcache::daemon
