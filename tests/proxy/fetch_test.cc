// Coalescing: many requests for one blob share a single upstream download,
// each following the growing file.
#include "proxy/fetch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "proxy/resolve.h"
#include "store/errc.h"
#include "tests/fakehub/fake_hub.h"
#include "tests/support/bytes.h"
#include "tests/support/run_async.h"

namespace hubcache::proxy {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::RunAsync;

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = fakehub::FakeHub::Start({});
    root_ = fs::temp_directory_path() / ("hubcache-fetch-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    store::Options options;
    options.cache_dir = root_.string();
    options.min_free_percent = 0;
    store_ = std::move(*store::BlobStore::Open(options));
    UpstreamOptions upstream;
    upstream.url = hub_->url();
    upstream.max_retries = 2;
    client_ = std::move(*HubClient::Create(upstream, {}, RetryPolicy{milliseconds(5), milliseconds(20)}));
    coordinator_ = std::make_unique<FetchCoordinator>(*client_, *store_, ioc_.get_executor(),
                                                      pool_.get_executor(),
                                                      RangedOptions{.connections = 4, .chunk_bytes = 1 << 20});
    commit_ = hub_->Commit("model", "org/model", "main");
    resolve_url_ = hub_->url() + "/org/model/resolve/main/model.safetensors";
    file_ = *RunAsync(ioc_, ResolveFile(*client_, resolve_url_, Secret()));
    digest_ = *store::Digest::ParseHex(file_.etag);
    hub_->ClearLog();
  }
  void TearDown() override {
    coordinator_.reset();
    client_.reset();
    pool_.join();
    store_.reset();
    fs::remove_all(root_);
  }

  // One client: join, wait for everything, read it back.
  net::awaitable<Result<std::string>> Reader(bool* started) {
    auto joined = coordinator_->Join(digest_, file_.size,
                                     {.download_url = file_.download_url, .resolve_url = resolve_url_});
    if (!joined) co_return Fail(joined.error());
    *started = joined->started;
    auto fd = joined->fetch->OpenReader();
    if (!fd) co_return Fail(fd.error());
    auto have = co_await joined->fetch->WaitFor(file_.size);
    if (!have) co_return Fail(have.error());
    co_return testing::ReadAll(fd->get());
  }

  std::unique_ptr<fakehub::FakeHub> hub_;
  fs::path root_;
  std::unique_ptr<store::BlobStore> store_;
  net::io_context ioc_;
  net::thread_pool pool_{2};
  std::unique_ptr<HubClient> client_;
  std::unique_ptr<FetchCoordinator> coordinator_;
  std::string commit_;
  std::string resolve_url_;
  ResolvedFile file_;
  store::Digest digest_ = store::HashBytes(store::DigestKind::kSha256, "");
};

TEST_F(FetchTest, ConcurrentRequestsShareOneUpstreamDownload) {
  constexpr int kClients = 32;
  std::vector<Result<std::string>> results(kClients, Fail(store::Errc::kIncomplete));
  bool started[kClients] = {};
  int finished = 0;
  for (int i = 0; i < kClients; ++i) {
    net::co_spawn(ioc_, Reader(&started[i]), [&, i](std::exception_ptr e, Result<std::string> r) {
      ASSERT_FALSE(e);
      results[i] = std::move(r);
      ++finished;
    });
  }
  ioc_.restart();
  ioc_.run_for(std::chrono::seconds(60));
  ASSERT_EQ(finished, kClients);
  const std::string expected = hub_->FileContent("model", "org/model", commit_, "model.safetensors");
  int starters = 0;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(results[i]) << i << ": " << results[i].error().message();
    EXPECT_EQ(*results[i], expected) << i;
    starters += started[i] ? 1 : 0;
  }
  EXPECT_EQ(starters, 1);
  EXPECT_EQ(hub_->BodyBytesSent("xet-bridge"), file_.size) << "upstream bytes != one copy";
  EXPECT_TRUE(store_->Lookup(digest_));
  EXPECT_EQ(coordinator_->running(), 0u);
}

TEST_F(FetchTest, ReadersSeeBytesBeforeTheDownloadEnds) {
  hub_->SetBandwidth(0, 10 * 1000 * 1000);  // 5 MB at 10 MB/s: about half a second
  auto joined = coordinator_->Join(digest_, file_.size,
                                   {.download_url = file_.download_url, .resolve_url = resolve_url_});
  ASSERT_TRUE(joined);
  const auto start = std::chrono::steady_clock::now();
  auto first = RunAsync(ioc_, joined->fetch->WaitFor(1));
  const auto first_ms = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(first);
  EXPECT_LT(*first, file_.size);
  auto all = RunAsync(ioc_, joined->fetch->WaitFor(file_.size));
  const auto all_ms = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, file_.size);
  EXPECT_LT(first_ms * 3, all_ms) << "the first bytes came only at the end";
}

TEST_F(FetchTest, AFailedFetchFailsEveryReaderAndCanBeRetried) {
  hub_->AddFault({.path_contains = "xet-bridge", .drop_times = 1, .flip_byte = true, .flip_offset = 10});
  bool started = false;
  auto result = RunAsync(ioc_, Reader(&started));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), store::Errc::kDigestMismatch);
  EXPECT_EQ(coordinator_->running(), 0u);
  EXPECT_FALSE(store_->Lookup(digest_));
  auto again = RunAsync(ioc_, Reader(&started));  // the fault is used up
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(store_->Lookup(digest_));
}

}  // namespace
}  // namespace hubcache::proxy
