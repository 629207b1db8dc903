#include "tests/fakehub/fake_hub.h"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ssl/context.hpp>

#include "core/asio.h"
#include "tests/fakehub/cdn_service.h"
#include "tests/fakehub/fixture.h"
#include "tests/fakehub/hub_service.h"
#include "tests/fakehub/knobs.h"
#include "tests/fakehub/listener.h"
#include "tests/fakehub/model.h"
#include "tests/fakehub/signer.h"
#include "tests/fakehub/tls.h"

namespace hubcache::fakehub {
namespace {

// How long the destructor lets sessions unwind after closing them before it
// stops the io_context outright.
constexpr auto kShutdownGrace = std::chrono::seconds(5);

}  // namespace

struct FakeHub::Impl {
  explicit Impl(Options opts) : options(std::move(opts)), knobs(options) {}

  // Declared first, destroyed last: every I/O object below dies before it.
  net::io_context ioc;
  Options options;
  std::unique_ptr<Model> model;
  Knobs knobs;
  Signer signer;
  std::unique_ptr<ThrowawayCa> ca;
  std::unique_ptr<net::ssl::context> ssl;
  std::unique_ptr<CdnService> cdn_service;
  std::unique_ptr<HubService> hub_service;
  std::unique_ptr<Listener> cdn;
  std::unique_ptr<Listener> hub;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;

  std::mutex done_mu;
  std::condition_variable done_cv;
  std::size_t threads_done = 0;  // GUARDED_BY(done_mu)

  std::string Url(std::uint16_t port) const {
    return fmt::format("{}://127.0.0.1:{}", options.tls ? "https" : "http", port);
  }

  const Repo& FindRepo(std::string_view type, std::string_view id) const {
    const auto parsed = ParseRepoType(type);
    if (!parsed)
      throw std::invalid_argument("fakehub: unknown repo type '" + std::string(type) + "'");
    const Repo* repo = model->FindRepo(*parsed, id);
    if (repo == nullptr) {
      throw std::invalid_argument(fmt::format("fakehub: no {} repo '{}'", type, id));
    }
    return *repo;
  }

  const fakehub::Commit& FindCommit(std::string_view type, std::string_view id,
                                    std::string_view revision) const {
    const Repo& repo = FindRepo(type, id);
    const fakehub::Commit* commit = model->Resolve(repo, revision);
    if (commit == nullptr) {
      throw std::invalid_argument(
          fmt::format("fakehub: repo '{}' has no revision '{}'", id, revision));
    }
    return *commit;
  }

  const File& FindFile(std::string_view type, std::string_view id, std::string_view revision,
                       std::string_view path) const {
    const fakehub::Commit& commit = FindCommit(type, id, revision);
    const File* file = commit.FindFile(path);
    if (file == nullptr) {
      throw std::invalid_argument(
          fmt::format("fakehub: repo '{}' has no file '{}' at {}", id, path, revision));
    }
    return *file;
  }
};

std::unique_ptr<FakeHub> FakeHub::Start(Options options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  const Options& opts = impl->options;
  if (!opts.fixture.empty()) {
    impl->model = LoadFixtureFile(opts.fixture);
  } else if (!opts.fixture_text.empty()) {
    impl->model = LoadFixture(opts.fixture_text, "<fixture_text>");
  } else {
    impl->model = LoadFixtureFile(DefaultFixturePath());
  }
  if (opts.threads < 1) throw std::runtime_error("fakehub: threads must be at least 1");

  if (opts.tls) {
    impl->ca = ThrowawayCa::Make();
    impl->ssl = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    impl->ssl->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                           net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                           net::ssl::context::no_tlsv1_1);
    const std::string& chain = impl->ca->chain_pem();
    const std::string& key = impl->ca->key_pem();
    impl->ssl->use_certificate_chain(net::buffer(chain.data(), chain.size()));
    impl->ssl->use_private_key(net::buffer(key.data(), key.size()), net::ssl::context::pem);
  }

  impl->cdn_service = std::make_unique<CdnService>(*impl->model, impl->signer);
  impl->cdn = std::make_unique<Listener>(impl->ioc, "cdn", opts.cdn_port, impl->ssl.get(),
                                         *impl->cdn_service, impl->knobs);
  HubConfig config;
  config.tls = opts.tls;
  config.xet = opts.xet;
  config.cdn_url = impl->Url(impl->cdn->port());
  impl->hub_service =
      std::make_unique<HubService>(*impl->model, impl->knobs, impl->signer, std::move(config));
  impl->hub = std::make_unique<Listener>(impl->ioc, "hub", opts.hub_port, impl->ssl.get(),
                                         *impl->hub_service, impl->knobs);
  impl->hub_service->SetHubUrl(impl->Url(impl->hub->port()));

  impl->work.emplace(impl->ioc.get_executor());
  impl->cdn->Start();
  impl->hub->Start();
  Impl* raw = impl.get();
  for (int i = 0; i < opts.threads; ++i) {
    impl->threads.emplace_back([raw] {
      raw->ioc.run();
      std::lock_guard lock(raw->done_mu);
      ++raw->threads_done;
      raw->done_cv.notify_all();
    });
  }
  return std::unique_ptr<FakeHub>(new FakeHub(std::move(impl)));
}

FakeHub::FakeHub(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FakeHub::~FakeHub() {
  impl_->hub->Stop();
  impl_->cdn->Stop();
  impl_->work.reset();
  {
    std::unique_lock lock(impl_->done_mu);
    const bool drained = impl_->done_cv.wait_for(
        lock, kShutdownGrace, [this] { return impl_->threads_done == impl_->threads.size(); });
    if (!drained) impl_->ioc.stop();
  }
  for (std::thread& t : impl_->threads) t.join();
}

std::string FakeHub::url() const { return impl_->Url(impl_->hub->port()); }
std::string FakeHub::cdn_url() const { return impl_->Url(impl_->cdn->port()); }
std::uint16_t FakeHub::port() const { return impl_->hub->port(); }
std::uint16_t FakeHub::cdn_port() const { return impl_->cdn->port(); }
std::string FakeHub::ca_file() const { return impl_->ca ? impl_->ca->ca_file() : std::string(); }

void FakeHub::AddFault(Fault fault) { impl_->knobs.AddFault(std::move(fault)); }
void FakeHub::ClearFaults() { impl_->knobs.ClearFaults(); }
std::vector<Fault> FakeHub::Faults() const { return impl_->knobs.Faults(); }

void FakeHub::SetBandwidth(std::uint64_t conn_bytes_per_sec, std::uint64_t total_bytes_per_sec) {
  impl_->knobs.SetBandwidth(conn_bytes_per_sec, total_bytes_per_sec);
}
void FakeHub::SetLatency(std::chrono::milliseconds latency) { impl_->knobs.SetLatency(latency); }
void FakeHub::SetSignedUrlTtl(std::chrono::seconds ttl) { impl_->knobs.SetSignedUrlTtl(ttl); }

std::vector<LogEntry> FakeHub::Log() const { return impl_->knobs.Log(); }
void FakeHub::ClearLog() { impl_->knobs.ClearLog(); }
std::uint64_t FakeHub::BodyBytesSent(std::string_view path_contains) const {
  return impl_->knobs.BodyBytesSent(path_contains);
}
std::size_t FakeHub::RequestCount(std::string_view path_contains) const {
  return impl_->knobs.RequestCount(path_contains);
}

void FakeHub::MoveBranch(std::string_view type, std::string_view repo, std::string_view branch,
                         std::string_view commit) {
  const auto parsed = ParseRepoType(type);
  if (!parsed)
    throw std::invalid_argument("fakehub: unknown repo type '" + std::string(type) + "'");
  const std::string problem = impl_->model->MoveBranch(*parsed, repo, branch, commit);
  if (!problem.empty()) throw std::invalid_argument("fakehub: MoveBranch: " + problem);
}

namespace {
// Applies `change` to the repo's current access.
void ChangeAccess(Model& model, std::string_view type, std::string_view repo,
                  const std::function<void(Model::Access&)>& change) {
  const auto parsed = ParseRepoType(type);
  if (!parsed) throw std::invalid_argument("fakehub: unknown repo type '" + std::string(type) + "'");
  const Repo* found = model.FindRepo(*parsed, repo);
  if (found == nullptr) {
    throw std::invalid_argument("fakehub: no " + std::string(type) + " repo '" + std::string(repo) + "'");
  }
  Model::Access access = model.AccessOf(*found);
  change(access);
  const std::string problem = model.SetAccess(*parsed, repo, std::move(access));
  if (!problem.empty()) throw std::invalid_argument("fakehub: " + problem);
}
}  // namespace

void FakeHub::SetPrivate(std::string_view type, std::string_view repo, bool is_private) {
  ChangeAccess(*impl_->model, type, repo, [&](Model::Access& a) { a.is_private = is_private; });
}

void FakeHub::SetTokenAccess(std::string_view type, std::string_view repo, std::string_view token,
                             bool granted) {
  ChangeAccess(*impl_->model, type, repo, [&](Model::Access& a) {
    if (granted) {
      a.tokens.insert(std::string(token));
    } else {
      a.tokens.erase(std::string(token));
    }
  });
}

void FakeHub::ResetAccess() { impl_->model->ResetAccess(); }

void FakeHub::DeleteRepo(std::string_view type, std::string_view repo) {
  ChangeAccess(*impl_->model, type, repo, [](Model::Access& a) { a.deleted = true; });
}

std::string FakeHub::FileContent(std::string_view type, std::string_view repo,
                                 std::string_view commit, std::string_view path,
                                 std::uint64_t offset, std::uint64_t length) const {
  return impl_->FindFile(type, repo, commit, path).content->ReadString(offset, length);
}

std::string FakeHub::Etag(std::string_view type, std::string_view repo, std::string_view commit,
                          std::string_view path) const {
  return impl_->FindFile(type, repo, commit, path).etag();
}

std::uint64_t FakeHub::FileSize(std::string_view type, std::string_view repo,
                                std::string_view commit, std::string_view path) const {
  return impl_->FindFile(type, repo, commit, path).size();
}

std::string FakeHub::Commit(std::string_view type, std::string_view repo,
                            std::string_view revision) const {
  return impl_->FindCommit(type, repo, revision).sha;
}

std::string DefaultFixture() { return DefaultFixturePath(); }

}  // namespace hubcache::fakehub
