#include "daemon/run.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/asio.h"
#include "core/errc.h"
#include "core/log.h"
#include "daemon/cli.h"
#include "daemon/notify.h"
#include "daemon/reload.h"
#include "daemon/version.h"
#include "proxy/access.h"
#include "proxy/fetch.h"
#include "proxy/file_resolver.h"
#include "proxy/hub_client.h"
#include "proxy/hub_routes.h"
#include "proxy/metrics.h"
#include "proxy/router.h"
#include "proxy/server.h"
#include "store/blob_store.h"
#include "store/cache_dir.h"
#include "store/token_hmac.h"

namespace hubcache::daemon {
namespace {

constexpr auto kModule = log::Module::kDaemon;

// Startup failures go to stderr as one plain sentence for a person at a
// terminal, or as a log event otherwise (journald, scripts).
int StartupFailure(std::string_view event, const std::string& message) {
  if (::isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "hubcache: %s\n", message.c_str());
  } else {
    log::Error(kModule, event, {{"error", message}});
    log::Flush();
  }
  return kExitFailure;
}

std::string JoinEndpoints(const std::vector<net::ip::tcp::endpoint>& endpoints) {
  std::string out;
  for (const auto& ep : endpoints) {
    if (!out.empty()) out += ',';
    const auto address = ep.address();
    out += address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), ep.port())
                           : fmt::format("{}:{}", address.to_string(), ep.port());
  }
  return out;
}

}  // namespace

int Run(const config::Loaded& loaded, Reloader reload) {
  const config::Config& config = loaded.config;
  log::Configure(config.log);
  // A client that disconnects mid-write must surface as EPIPE, not kill us.
  std::signal(SIGPIPE, SIG_IGN);

  // 1. The cache directory, held exclusively by this process.
  auto cache_dir = store::CacheDir::Open(config.store.cache_dir);
  if (!cache_dir) {
    if (cache_dir.error() == core::Errc::kLocked) {
      const auto holder = store::CacheDir::HolderPid(config.store.cache_dir);
      return StartupFailure(
          "cache_dir_locked",
          fmt::format("cache directory {} is in use by another hubcache process{}; stop it "
                      "or choose another --cache-dir",
                      config.store.cache_dir,
                      holder ? fmt::format(" (pid {})", *holder) : std::string()));
    }
    return StartupFailure("cache_dir_failed",
                          fmt::format("cannot open cache directory {}: {}",
                                      config.store.cache_dir, cache_dir.error().message()));
  }

  // 2. The store: blob files and index, made consistent after any crash.
  auto store = store::BlobStore::Open(config.store);
  if (!store) {
    return StartupFailure("store_open_failed",
                          fmt::format("cannot open the store in {}: {}", config.store.cache_dir,
                                      store.error().message()));
  }

  auto hmac = store::TokenHmac::LoadOrCreate(config.store.cache_dir);
  if (!hmac) {
    return StartupFailure("secret_failed",
                          fmt::format("cannot read or create the install secret in {}: {}",
                                      config.store.cache_dir, hmac.error().message()));
  }

  // 3. The event loop (declared before everything whose sockets or timers
  // live on it, so that it is destroyed after them), the Hub client and the
  // proxy's parts.
  const unsigned threads =
      config.server.threads != 0 ? config.server.threads
                                 : std::max(1u, std::thread::hardware_concurrency());
  net::io_context ioc(static_cast<int>(threads));
  auto client = proxy::HubClient::Create(config.upstream);
  if (!client) {
    return StartupFailure("upstream_failed", fmt::format("cannot set up the Hub client: {}",
                                                         client.error().message()));
  }
  // Disk work (writes, hashing, fsync, LMDB writes) runs here, off the loop.
  net::thread_pool blocking(std::max(2u, threads));
  proxy::Metrics metrics;
  proxy::AccessPolicy access((*store)->index(), *hmac, config.access);
  proxy::FetchCoordinator fetches(**client, **store, ioc.get_executor(), blocking.get_executor(),
                                  {.connections = config.upstream.connections,
                                   .chunk_bytes = config.upstream.chunk_bytes});
  fetches.set_metrics(&metrics);
  proxy::FileResolver files(**client, (*store)->index(), access, metrics, blocking.get_executor(),
                            config.upstream.url, config.upstream.offline, config.cache);
  proxy::HubContext hub{.client = **client,
                        .store = **store,
                        .fetches = fetches,
                        .files = files,
                        .access = access,
                        .metrics = metrics,
                        .blocking = blocking.get_executor(),
                        .upstream_url = config.upstream.url,
                        .public_url = config.server.public_url,
                        .options = config.proxy};

  // 4. The event loop and the HTTP server on it.
  proxy::Router router(&hub);
  auto server = proxy::Server::Create(ioc, config.server, router);
  if (!server) {
    std::string addresses;
    for (const auto& a : config.server.listen) addresses += (addresses.empty() ? "" : ", ") + a;
    return StartupFailure("listen_failed", fmt::format("cannot listen on {}: {}", addresses,
                                                       server.error().message()));
  }

  // SIGHUP: reload what can change at run time, report the rest.
  config::Loaded running = loaded;
  net::signal_set hangup(ioc, SIGHUP);
  std::function<void(ErrorCode, int)> on_hangup = [&](ErrorCode ec, int) {
    if (ec) return;
    Notify("RELOADING=1");
    auto next = reload ? reload() : tl::expected<config::Loaded, std::string>(running);
    if (!next) {
      log::Warn(kModule, "reload_failed", {{"error", next.error()}});
    } else {
      const ReloadPlan plan = PlanReload(running, *next);
      log::Configure(next->config.log);
      access.SetOptions(next->config.access);
      files.SetCacheOptions(next->config.cache);
      running.config.log = next->config.log;
      running.config.access = next->config.access;
      running.config.cache = next->config.cache;
      auto join = [](const std::vector<std::string>& keys) {
        std::string out;
        for (const auto& k : keys) out += (out.empty() ? "" : ",") + k;
        return out.empty() ? std::string("none") : out;
      };
      log::Info(kModule, "config_reloaded",
                {{"applied", join(plan.applied)}, {"restart_needed", join(plan.restart_needed)}});
      if (!plan.restart_needed.empty()) {
        log::Warn(kModule, "restart_needed",
                  {{"keys", join(plan.restart_needed)},
                   {"reason", "these settings take effect when hubcache restarts"}});
      }
    }
    Notify("READY=1");
    hangup.async_wait(on_hangup);
  };
  hangup.async_wait(on_hangup);

  // The systemd watchdog, fed from the event loop so that a stuck loop is
  // noticed.
  net::steady_timer watchdog(ioc);
  const auto watchdog_interval = WatchdogInterval();
  std::function<void(ErrorCode)> feed_watchdog = [&](ErrorCode ec) {
    if (ec) return;
    Notify("WATCHDOG=1");
    watchdog.expires_after(*watchdog_interval / 2);
    watchdog.async_wait(feed_watchdog);
  };
  if (watchdog_interval) feed_watchdog({});

  // 5. Signals: the first SIGTERM/SIGINT drains, a second one stops at once.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  int signals_seen = 0;
  std::function<void(ErrorCode, int)> on_signal = [&](ErrorCode ec, int signo) {
    if (ec) return;
    if (++signals_seen > 1) {
      log::Warn(kModule, "shutdown_forced", {{"signal", signo}});
      ioc.stop();
      return;
    }
    router.SetReady(false);  // load balancers stop sending new clients
    Notify("STOPPING=1");
    log::Info(kModule, "shutdown_started",
              {{"signal", signo}, {"open_connections", (*server)->connection_count()},
               {"deadline_ms", config.server.shutdown_timeout}});
    (*server)->Shutdown(config.server.shutdown_timeout, [&signals, &hangup, &watchdog, &ioc] {
      ErrorCode ignored;
      signals.cancel(ignored);
      hangup.cancel(ignored);
      watchdog.cancel();
      ioc.stop();
    });
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  (*server)->Start();
  router.SetReady(true);
  Notify("READY=1\nSTATUS=serving on " + JoinEndpoints((*server)->endpoints()));
  log::Info(kModule, "hubcache_started",
            {{"version", Version()},
             {"listen", JoinEndpoints((*server)->endpoints())},
             {"cache_dir", (*cache_dir)->path().string()},
             {"upstream", config.upstream.url},
             {"offline", config.upstream.offline},
             {"threads", threads},
             {"config_file", loaded.config_file.empty() ? "none" : loaded.config_file}});

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  blocking.join();

  log::Info(kModule, "hubcache_stopped", {});
  log::Flush();
  return kExitOk;
}

}  // namespace hubcache::daemon
