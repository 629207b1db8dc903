#include "daemon/service.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

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

namespace {

// Where the other nodes (a cluster prefetch) reach this node's clients'
// endpoint: server.public_url when set; else the first listener, on the
// cluster address's host when it listens on every address.
std::string ClientUrl(const std::string& public_url, const std::string& cluster_listen,
                      const std::vector<net::ip::tcp::endpoint>& endpoints) {
  if (!public_url.empty()) {
    std::string url = public_url;
    while (url.ends_with('/')) url.pop_back();
    return url;
  }
  if (endpoints.empty()) return {};
  const net::ip::tcp::endpoint& ep = endpoints.front();
  std::string host;
  if (ep.address().is_unspecified()) {
    std::string port;
    if (!p2p::SplitNodeAddress(cluster_listen, host, port)) return {};
  } else {
    host = ep.address().to_string();
  }
  if (host.find(':') != std::string::npos && !host.starts_with('[')) host = "[" + host + "]";
  return fmt::format("http://{}:{}", host, ep.port());
}

// A listener of its own for `handler` on `address` (the cluster API, the
// status page), with the client listeners' limits and timeouts.
Result<std::unique_ptr<proxy::Server>> ListenerOfItsOwn(net::io_context& ioc,
                                                        const proxy::ServerOptions& clients,
                                                        const std::string& address,
                                                        proxy::Handler& handler) {
  proxy::ServerOptions options = clients;
  options.listen = {address};
  options.public_url.clear();
  return proxy::Server::Create(ioc, options, handler);
}

// The admin token of the status page (status.admin_token_file), trimmed.
// Errors: a sentence saying what is wrong with the file.
tl::expected<Secret, std::string> ReadAdminToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return tl::unexpected(std::string("it cannot be read"));
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!token.empty() && space(static_cast<unsigned char>(token.back()))) token.pop_back();
  const auto first = std::find_if_not(token.begin(), token.end(),
                                      [&](char c) { return space(static_cast<unsigned char>(c)); });
  token.erase(token.begin(), first);
  if (token.empty()) return tl::unexpected(std::string("it is empty"));
  if (token.size() < 16) return tl::unexpected(std::string("the token is shorter than 16 characters"));
  return Secret(std::move(token));
}

}  // namespace

tl::expected<std::unique_ptr<Service>, Service::Failure> Service::Create(
    const config::Config& config, Store& store, net::io_context& ioc, unsigned threads,
    std::vector<net::io_context*> connection_loops, bool join_cluster) {
  using Unexpected = tl::unexpected<Failure>;
  // 3. The Hub client.
  auto client = proxy::HubClient::Create(config.upstream);
  if (!client) {
    return Unexpected(Failure{"upstream_failed", fmt::format("cannot set up the Hub client: {}",
                                                             client.error().message())});
  }
  // The cluster: its libtorrent session and the store hooks, before the
  // coordinator that asks it for blobs.
  std::unique_ptr<p2p::Cluster> cluster;
  if (join_cluster && !config.cluster.listen.empty()) {
    auto created = p2p::Cluster::Create(config.cluster, *store.blobs, ioc.get_executor());
    if (!created) {
      return Unexpected(Failure{
          "cluster_failed",
          fmt::format("cannot join the cluster as {} (secret file {}, BitTorrent port {}): {}",
                      config.cluster.listen, config.cluster.secret_file,
                      config.cluster.torrent_port != 0 ? std::to_string(config.cluster.torrent_port)
                                                       : std::string("listen port + 1"),
                      created.error().message())});
    }
    cluster = std::move(*created);
  }
  std::unique_ptr<Service> service(
      new Service(config, ioc, threads, store, std::move(*client), std::move(cluster)));
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
  if (service->cluster_) {
    service->cluster_handler_ = std::make_unique<ClusterHandler>(
        *service->cluster_, service->fetches_, *service->store_.blobs, config.upstream.url,
        service->blocking_.get_executor());
    auto cluster_server =
        ListenerOfItsOwn(ioc, config.server, config.cluster.listen, *service->cluster_handler_);
    if (!cluster_server) {
      return Unexpected(Failure{"cluster_listen_failed",
                                fmt::format("cannot listen for the cluster on {}: {}",
                                            config.cluster.listen,
                                            cluster_server.error().message())});
    }
    service->cluster_server_ = std::move(*cluster_server);
    service->cluster_server_->SetRequestLogLevel(log::Level::kDebug);
    service->cluster_->SetClientUrl(
        ClientUrl(config.server.public_url, config.cluster.listen, service->server_->endpoints()));
  }
  // The status page: on the client listeners when enabled, on its own
  // listener when it has one.
  if (config.status.enabled || !config.status.listen.empty()) {
    Secret admin;
    if (!config.status.admin_token_file.empty()) {
      auto token = ReadAdminToken(config.status.admin_token_file);
      if (!token) {
        return Unexpected(Failure{"status_failed",
                                  fmt::format("cannot use status.admin_token_file {}: {}",
                                              config.status.admin_token_file, token.error())});
      }
      admin = std::move(*token);
    }
    service->status_page_ = std::make_unique<StatusPage>(
        StatusPage::Parts{.store = *service->store_.blobs,
                          .fetches = service->fetches_,
                          .metrics = service->metrics_,
                          .files = service->files_,
                          .cluster = service->cluster_.get(),
                          .upstream_url = config.upstream.url,
                          .store_options = config.store,
                          .admin_token = std::move(admin),
                          .blocking = service->blocking_.get_executor()},
        ioc.get_executor());
    if (config.status.enabled) service->router_.SetStatusPage(service->status_page_.get());
    if (!config.status.listen.empty()) {
      service->status_router_ = std::make_unique<proxy::Router>();
      service->status_router_->SetStatusPage(service->status_page_.get());
      service->status_router_->SetReady(true);
      auto status_server =
          ListenerOfItsOwn(ioc, config.server, config.status.listen, *service->status_router_);
      if (!status_server) {
        return Unexpected(Failure{"status_listen_failed",
                                  fmt::format("cannot listen for the status page on {}: {}",
                                              config.status.listen,
                                              status_server.error().message())});
      }
      service->status_server_ = std::move(*status_server);
    }
  }
  return service;
}

void Service::StartStatus() {
  if (status_page_) status_page_->Start();
  if (status_server_) status_server_->Start();
}

void Service::StopStatus() {
  if (status_page_) status_page_->Stop();
  if (status_server_) status_server_->Shutdown(std::chrono::milliseconds(0), [] {});
}

std::vector<net::ip::tcp::endpoint> Service::status_endpoints() const {
  return status_server_ ? status_server_->endpoints() : std::vector<net::ip::tcp::endpoint>{};
}

void Service::StartCluster() {
  if (!cluster_) return;
  cluster_server_->Start();
  cluster_->Start();
}

void Service::StopCluster() {
  if (!cluster_) return;
  cluster_->Stop();
  cluster_server_->Shutdown(std::chrono::milliseconds(0), [] {});
}

std::vector<proxy::BlobSource*> Service::Sources(proxy::BlobSource* peer, proxy::BlobSource* hub) {
  std::vector<proxy::BlobSource*> sources;
  if (peer != nullptr) sources.push_back(peer);
  sources.push_back(hub);
  return sources;
}

Service::Service(const config::Config& config, net::io_context& ioc, unsigned threads,
                 Store& store, std::unique_ptr<proxy::HubClient> client,
                 std::unique_ptr<p2p::Cluster> cluster)
    : store_(store),
      client_(std::move(client)),
      cluster_(std::move(cluster)),
      peer_source_(cluster_ ? std::make_unique<PeerSource>(*cluster_, config.upstream.url)
                            : nullptr),
      blocking_(std::max(2u, threads)),
      access_(store_.blobs->index(), store_.hmac, config.access),
      small_blobs_(*store_.blobs),
      hub_source_(*client_, {.connections = config.upstream.connections,
                             .chunk_bytes = config.upstream.chunk_bytes}),
      fetches_(*store_.blobs, Sources(peer_source_.get(), &hub_source_), ioc.get_executor(),
               blocking_.get_executor()),
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
  if (cluster_) {
    metrics_.SetExtra([cluster = cluster_.get()] { return ClusterMetrics(*cluster); });
  }
}

Service::~Service() {
  server_.reset();
  cluster_server_.reset();
  status_server_.reset();
  blocking_.join();
}

}  // namespace hubcache::daemon
