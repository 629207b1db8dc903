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
#include "daemon/service.h"
#include "daemon/version.h"

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

  // The store first (destroyed last), then the event loop (destroyed after
  // the service, whose sockets and timers live on it), then the service.
  auto opened = Service::OpenStore(config);
  if (!opened) return StartupFailure(opened.error().event, opened.error().message);
  const unsigned threads =
      config.server.threads != 0 ? config.server.threads
                                 : std::max(1u, std::thread::hardware_concurrency());
  // One event loop per thread. The first also runs the accept loops,
  // downloads, signals and timers; client connections are spread over all
  // of them, so a connection's handlers always run on one thread and the
  // loops share no scheduler (no lock contention, no cross-thread wake-ups).
  EventLoop ioc(1);
  std::vector<std::unique_ptr<EventLoop>> more_loops;
  std::vector<net::io_context*> connection_loops{&ioc};
  for (unsigned i = 1; i < threads; ++i) {
    more_loops.push_back(std::make_unique<EventLoop>(1));
    connection_loops.push_back(more_loops.back().get());
  }
  auto created = Service::Create(config, *opened, ioc, threads, connection_loops,
                                 /*join_cluster=*/true);
  if (!created) return StartupFailure(created.error().event, created.error().message);
  Service& service = **created;
  proxy::Server& server = service.server();
  proxy::Router& router = service.router();
  proxy::AccessPolicy& access = service.access();
  proxy::FileResolver& files = service.files();

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
    service.StopCluster();
    service.StopStatus();
    Notify("STOPPING=1");
    log::Info(kModule, "shutdown_started",
              {{"signal", signo}, {"open_connections", server.connection_count()},
               {"deadline_ms", config.server.shutdown_timeout}});
    server.Shutdown(config.server.shutdown_timeout, [&signals, &hangup, &watchdog, &ioc] {
      ErrorCode ignored;
      signals.cancel(ignored);
      hangup.cancel(ignored);
      watchdog.cancel();
      ioc.stop();
    });
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  server.Start();
  service.StartCluster();
  service.StartStatus();
  router.SetReady(true);
  Notify("READY=1\nSTATUS=serving on " + JoinEndpoints(server.endpoints()));
  log::Info(kModule, "hubcache_started",
            {{"version", Version()},
             {"listen", JoinEndpoints(server.endpoints())},
             {"cache_dir", service.cache_dir().path().string()},
             {"upstream", config.upstream.url},
             {"offline", config.upstream.offline},
             {"cluster", config.cluster.listen.empty() ? std::string("none")
                                                       : config.cluster.listen},
             {"status", !service.status_endpoints().empty()
                            ? "http://" + JoinEndpoints(service.status_endpoints()) + "/_hubcache/"
                        : config.status.enabled ? std::string("/_hubcache/")
                                                : std::string("off")},
             {"threads", threads},
             {"config_file", loaded.config_file.empty() ? "none" : loaded.config_file}});

  std::vector<std::thread> pool;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  for (auto& loop : more_loops) {
    keep_running.push_back(net::make_work_guard(*loop));
    pool.emplace_back([&loop] { loop->run(); });
  }
  ioc.run();
  // The main loop stops when shutdown is complete (or forced): so do the rest.
  for (auto& loop : more_loops) loop->stop();
  for (auto& t : pool) t.join();
  service.JoinBlocking();
  // What is still suspended on the loops (an announcement, a health check
  // in flight) refers to the service: destroy it now, while the service is
  // alive. The loops themselves go after the service, as they were made
  // before it.
  for (auto& loop : more_loops) loop->Shutdown();
  ioc.Shutdown();

  log::Info(kModule, "hubcache_stopped", {});
  log::Flush();
  return kExitOk;
}

}  // namespace hubcache::daemon
