// hubcache-fakehub: runs the fake Hub as a process, for scripts, end-to-end
// tests with real clients, and benchmarks.
//
//   hubcache-fakehub [--fixture FILE] [--port N] [--cdn-port N] [--tls] [--xet]
//                    [--conn-rate BYTES/S] [--total-rate BYTES/S] [--latency-ms N]
//
// When both listeners serve it prints exactly one line on stdout,
//   fakehub hub=<url> cdn=<url> ca=<file>
// (ca= is empty without --tls), then writes one access-log line per request
// to stderr, and runs until SIGTERM or SIGINT. Exit status: 0 after a signal,
// 2 for bad flags, 1 if it cannot start (bad fixture, port in use).
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "tests/fakehub/fake_hub.h"

namespace {

// "8000000", "8M", "8MB", "1.5G", "512Ki": bytes per second (k/M/G are
// powers of 1000, Ki/Mi/Gi of 1024).
std::optional<std::uint64_t> ParseRate(std::string text) {
  if (text.ends_with("/s")) text.resize(text.size() - 2);
  if (text.ends_with("B")) text.resize(text.size() - 1);
  double scale = 1;
  const std::pair<const char*, double> suffixes[] = {{"Ki", 1024.0},
                                                     {"Mi", 1024.0 * 1024},
                                                     {"Gi", 1024.0 * 1024 * 1024},
                                                     {"k", 1e3},
                                                     {"K", 1e3},
                                                     {"M", 1e6},
                                                     {"G", 1e9}};
  for (const auto& [suffix, factor] : suffixes) {
    if (text.ends_with(suffix)) {
      text.resize(text.size() - std::string_view(suffix).size());
      scale = factor;
      break;
    }
  }
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used != text.size() || value < 0) return std::nullopt;
    return static_cast<std::uint64_t>(value * scale);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

int main(int argc, char** argv) {
  using hubcache::fakehub::FakeHub;
  using hubcache::fakehub::LogEntry;
  using hubcache::fakehub::Options;

  Options options;
  std::string conn_rate = "0";
  std::string total_rate = "0";
  int latency_ms = 0;
  bool quiet = false;
  CLI::App app{"A fake Hugging Face Hub for tests and benchmarks (see tests/fakehub/README.md)"};
  app.add_option("--fixture", options.fixture, "Fixture file (TOML); default: the shipped fixture")
      ->check(CLI::ExistingFile);
  app.add_option("--port", options.hub_port, "Port of the hub listener on 127.0.0.1 (0: any)");
  app.add_option("--cdn-port", options.cdn_port, "Port of the CDN listener on 127.0.0.1 (0: any)");
  app.add_flag("--tls", options.tls, "Serve https with a throwaway CA (its PEM is ca=)");
  app.add_flag("--xet", options.xet, "Add the Hub's Xet hints to resolves and JSON");
  app.add_option("--conn-rate", conn_rate, "Per-connection body bandwidth, bytes/s (0: none)");
  app.add_option("--total-rate", total_rate, "Total body bandwidth, bytes/s (0: none)");
  app.add_option("--latency-ms", latency_ms, "Delay before each response head, ms")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", options.threads, "Server threads")->check(CLI::PositiveNumber);
  app.add_flag("--quiet", quiet, "No access log on stderr");
  CLI11_PARSE(app, argc, argv);

  const auto conn = ParseRate(conn_rate);
  const auto total = ParseRate(total_rate);
  if (!conn || !total) {
    fmt::print(stderr, "hubcache-fakehub: bad rate '{}' (want bytes/s, e.g. 8000000 or 8M)\n",
               !conn ? conn_rate : total_rate);
    return 2;
  }
  options.conn_bytes_per_sec = *conn;
  options.total_bytes_per_sec = *total;
  options.latency = std::chrono::milliseconds(latency_ms);
  if (!quiet) {
    options.on_request = [](const LogEntry& e) {
      fmt::print(stderr, "fakehub_request listener={} method={} path={} status={} bytes={}{}{}\n",
                 e.listener, e.method, e.target, e.status, e.body_bytes_sent,
                 e.range.empty() ? "" : " range=", e.range);
    };
  }

  // Block the signals in every thread (the server threads inherit the mask),
  // then wait for them synchronously here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<FakeHub> hub;
  try {
    hub = FakeHub::Start(std::move(options));
  } catch (const std::exception& e) {
    fmt::print(stderr, "hubcache-fakehub: {}\n", e.what());
    return 1;
  }
  fmt::print("fakehub hub={} cdn={} ca={}\n", hub->url(), hub->cdn_url(), hub->ca_file());
  std::fflush(stdout);

  int signo = 0;
  sigwait(&signals, &signo);
  fmt::print(stderr, "fakehub_stopping signal={}\n", signo);
  hub.reset();
  return 0;
}
