// The Hub client against the fake Hub (tests/fakehub), over real TLS with a
// throwaway CA and over plain HTTP: metadata resolution as huggingface_hub
// does it, downloads from the CDN, faults, signed-URL expiry.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "proxy/errc.h"
#include "proxy/hub_client.h"
#include "proxy/ranged_download.h"
#include "proxy/resolve.h"
#include "tests/fakehub/fake_hub.h"
#include "tests/support/run_async.h"

namespace hubcache::proxy {
namespace {

using fakehub::FakeHub;
using std::chrono::milliseconds;
using testing::RunAsync;

constexpr std::string_view kModel = "org/model";

class MemorySink final : public ChunkSink {
 public:
  explicit MemorySink(std::size_t size) : data(size, '\0') {}
  net::awaitable<Result<void>> WriteAt(std::uint64_t offset,
                                       std::span<const std::uint8_t> bytes) override {
    std::lock_guard lock(mu);
    std::memcpy(data.data() + offset, bytes.data(), bytes.size());
    co_return Result<void>();
  }
  std::mutex mu;
  std::string data;
};

class UpstreamTest : public ::testing::TestWithParam<bool> {
 protected:
  bool tls() const { return GetParam(); }

  void SetUp() override {
    fakehub::Options options;
    options.tls = tls();
    hub_ = FakeHub::Start(options);
    ASSERT_TRUE(hub_);
    commit_ = hub_->Commit("model", kModel, "main");
  }
  void TearDown() override { client_.reset(); }

  HubClient* Client(UpstreamOptions options = {}) {
    options.url = hub_->url();
    if (tls()) options.ca_file = hub_->ca_file();
    options.max_retries = 3;
    auto client = HubClient::Create(options, {}, RetryPolicy{milliseconds(5), milliseconds(50)});
    EXPECT_TRUE(client) << client.error().message();
    client_ = std::move(*client);
    return client_.get();
  }

  std::string ResolveUrl(std::string_view repo, std::string_view rev, std::string_view path) const {
    return hub_->url() + "/" + std::string(repo) + "/resolve/" + std::string(rev) + "/" +
           std::string(path);
  }

  std::unique_ptr<FakeHub> hub_;
  std::string commit_;
  net::io_context ioc_;
  std::unique_ptr<HubClient> client_;
};

TEST_P(UpstreamTest, ApiRequestsReuseOneConnection) {
  auto* client = Client();
  for (int i = 0; i < 5; ++i) {
    auto info = RunAsync(ioc_, client->Fetch({.url = hub_->url() + "/api/models/org/model"}));
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->head.status, 200u);
    EXPECT_NE(info->body.find(commit_), std::string::npos);
  }
  EXPECT_EQ(client->pool().opened(), 1u);
}

TEST_P(UpstreamTest, ResolvesARegularFileThroughTheRelativeRedirect) {
  auto* client = Client();
  auto file = RunAsync(ioc_, ResolveFile(*client, ResolveUrl(kModel, "main", "config.json"),
                                         Secret()));
  ASSERT_TRUE(file) << file.error().message();
  EXPECT_EQ(file->status, 200u);
  EXPECT_EQ(file->commit, commit_);
  EXPECT_FALSE(file->lfs);
  EXPECT_EQ(file->etag, hub_->Etag("model", kModel, commit_, "config.json"));
  EXPECT_EQ(file->size, hub_->FileSize("model", kModel, commit_, "config.json"));
  EXPECT_TRUE(file->download_url.starts_with(hub_->url() + "/api/resolve-cache/"));
  auto body = RunAsync(ioc_, client->Fetch({.url = file->download_url}));
  ASSERT_TRUE(body);
  EXPECT_EQ(body->body, hub_->FileContent("model", kModel, commit_, "config.json"));
}

// A renamed repo: the Hub's redirect to the new name is not followed (the
// client must ask under the new name), for regular and LFS files alike.
TEST_P(UpstreamTest, ARenamedRepoComesBackAsItsRedirect) {
  auto* client = Client();
  for (std::string_view path : {"config.json", "model.safetensors"}) {
    auto moved = RunAsync(ioc_, ResolveFile(*client, ResolveUrl("org/old-model", "main", path),
                                            Secret()));
    ASSERT_TRUE(moved) << moved.error().message();
    EXPECT_EQ(moved->status, 307u);
    EXPECT_EQ(moved->moved_to, "/org/model/resolve/main/" + std::string(path));
    EXPECT_EQ(moved->commit, "");
    EXPECT_EQ(moved->download_url, "");
  }
  EXPECT_EQ(hub_->RequestCount("/org/model/"), 0u) << "the new name was not asked";
}

TEST_P(UpstreamTest, ResolvesAnLfsFileAndDownloadsItInParallelRangesWithoutTheToken) {
  auto* client = Client();
  auto file = RunAsync(ioc_, ResolveFile(*client, ResolveUrl(kModel, "main", "model.safetensors"),
                                         Secret("hf_user")));
  ASSERT_TRUE(file) << file.error().message();
  EXPECT_EQ(file->status, 200u);
  EXPECT_TRUE(file->lfs);
  EXPECT_EQ(file->etag.size(), 64u);
  EXPECT_EQ(file->etag, hub_->Etag("model", kModel, commit_, "model.safetensors"));
  EXPECT_TRUE(file->download_url.starts_with(hub_->cdn_url()));
  MemorySink sink(file->size);
  auto done = RunAsync(ioc_, DownloadRanges(*client,
                                            {.url = file->download_url, .size = file->size,
                                             .token = Secret("hf_user")},
                                            sink, {.connections = 4, .chunk_bytes = 1 << 20}));
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(sink.data, hub_->FileContent("model", kModel, commit_, "model.safetensors"));
  for (const auto& entry : hub_->Log()) {
    if (entry.listener == "cdn") {
      EXPECT_FALSE(entry.had_authorization) << entry.target;
    } else {
      EXPECT_TRUE(entry.had_authorization) << entry.target;
    }
  }
  EXPECT_GE(hub_->RequestCount("xet-bridge"), 2u);
}

TEST_P(UpstreamTest, RefusalsComeBackAsTheHubGaveThem) {
  auto* client = Client();
  auto gated = RunAsync(ioc_, ResolveFile(*client, ResolveUrl("org/gated", "main", "config.json"),
                                          Secret()));
  ASSERT_TRUE(gated);
  EXPECT_EQ(gated->status, 401u);
  EXPECT_EQ(gated->head.Header("x-error-code"), "GatedRepo");
  auto missing = RunAsync(ioc_, ResolveFile(*client, ResolveUrl(kModel, "main", "nope.txt"),
                                            Secret()));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404u);
  EXPECT_EQ(missing->head.Header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(missing->head.Header("x-repo-commit"), commit_);
}

TEST_P(UpstreamTest, ServerErrorsAndDroppedBodiesAreRetriedAndResumed) {
  auto* client = Client();
  auto file = RunAsync(ioc_, ResolveFile(*client, ResolveUrl(kModel, "main", "model.safetensors"),
                                         Secret()));
  ASSERT_TRUE(file);
  hub_->AddFault({.path_contains = "xet-bridge", .fail_first = 2, .fail_status = 503});
  hub_->AddFault({.path_contains = "xet-bridge", .drop_after_bytes = 100'000, .drop_times = 3});
  hub_->AddFault({.path_contains = "xet-bridge", .short_body = true});
  MemorySink sink(file->size);
  auto done = RunAsync(ioc_, DownloadRanges(*client, {.url = file->download_url, .size = file->size},
                                            sink, {.connections = 3, .chunk_bytes = 1 << 20}));
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(sink.data, hub_->FileContent("model", kModel, commit_, "model.safetensors"));
}

TEST_P(UpstreamTest, StalledBodiesTimeOutAndResume) {
  UpstreamOptions options;
  options.read_timeout = milliseconds(400);
  auto* client = Client(options);
  auto file = RunAsync(ioc_, ResolveFile(*client, ResolveUrl(kModel, "main", "model.safetensors"),
                                         Secret()));
  ASSERT_TRUE(file);
  hub_->AddFault({.path_contains = "xet-bridge", .drop_after_bytes = -1, .drop_times = 1,
                  .stall = true});
  hub_->AddFault({.path_contains = "xet-bridge", .fail_first = 1, .fail_status = 429});
  MemorySink sink(file->size);
  auto done = RunAsync(ioc_, DownloadRanges(*client, {.url = file->download_url, .size = file->size},
                                            sink, {.connections = 2, .chunk_bytes = 1 << 20}));
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(sink.data, hub_->FileContent("model", kModel, commit_, "model.safetensors"));
}

TEST_P(UpstreamTest, ExpiredSignedUrlsAreResolvedAgain) {
  hub_->SetSignedUrlTtl(std::chrono::seconds(1));
  auto* client = Client();
  const std::string resolve_url = ResolveUrl(kModel, commit_, "model.safetensors");
  auto file = RunAsync(ioc_, ResolveFile(*client, resolve_url, Secret()));
  ASSERT_TRUE(file);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // the URL expires
  int resolves = 0;
  RangedJob job{.url = file->download_url, .size = file->size};
  job.resolve = [&]() -> net::awaitable<Result<std::string>> {
    ++resolves;
    hub_->SetSignedUrlTtl(std::chrono::seconds(3600));
    auto again = co_await ResolveFile(*client, resolve_url, Secret());
    if (!again) co_return Fail(again.error());
    co_return again->download_url;
  };
  MemorySink sink(file->size);
  auto done = RunAsync(ioc_, DownloadRanges(*client, std::move(job), sink,
                                            {.connections = 4, .chunk_bytes = 1 << 20}));
  ASSERT_TRUE(done) << done.error().message();
  EXPECT_EQ(resolves, 1);
  EXPECT_EQ(sink.data, hub_->FileContent("model", kModel, commit_, "model.safetensors"));
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, UpstreamTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Tls" : "Plain"; });

TEST(UpstreamTlsTest, UnverifiableCertificateIsRefusedAndNotRetried) {
  fakehub::Options hub_options;
  hub_options.tls = true;
  auto hub = FakeHub::Start(hub_options);
  ASSERT_TRUE(hub);
  UpstreamOptions options;
  options.url = hub->url();
  options.max_retries = 3;
  auto client = HubClient::Create(options);  // system CAs: the throwaway CA is unknown
  ASSERT_TRUE(client);
  net::io_context ioc;
  auto info = RunAsync(ioc, (*client)->Fetch({.url = hub->url() + "/api/models/org/model"}));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().category(), net::error::get_ssl_category()) << info.error().message();
  EXPECT_EQ(hub->RequestCount(), 0u);
  EXPECT_EQ((*client)->pool().opened(), 0u) << "a refused handshake is not retried";
  client->reset();
}

TEST(UpstreamTlsTest, HostNameMustMatchTheCertificate) {
  fakehub::Options hub_options;
  hub_options.tls = true;
  auto hub = FakeHub::Start(hub_options);
  ASSERT_TRUE(hub);
  UpstreamOptions options;
  options.ca_file = hub->ca_file();
  options.max_retries = 0;
  auto client = HubClient::Create(options);
  ASSERT_TRUE(client);
  net::io_context ioc;
  // The certificate names 127.0.0.1, ::1 and localhost; "127.1" reaches the
  // same listener (the resolver reads it as 127.0.0.1) under a name the
  // certificate does not carry.
  const std::string port = std::to_string(hub->port());
  auto good = RunAsync(ioc, (*client)->Fetch({.url = "https://localhost:" + port + "/api/models/org/model"}));
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_EQ(good->head.status, 200u);
  auto wrong = RunAsync(ioc, (*client)->Fetch({.url = "https://127.1:" + port + "/api/models/org/model"}));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().category(), net::error::get_ssl_category()) << wrong.error().message();
  client->reset();
}

}  // namespace
}  // namespace hubcache::proxy
