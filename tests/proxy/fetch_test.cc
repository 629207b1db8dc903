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
#include "tests/proxy/upstream_store_fixture.h"
#include "tests/support/bytes.h"
#include "tests/support/run_async.h"

namespace hubcache::proxy {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::RunAsync;

class FetchTest : public UpstreamStoreTest {
 protected:
  void SetUp() override {
    StartUpstreamAndStore(2, milliseconds(20));
    if (HasFatalFailure()) return;
    coordinator_ = std::make_unique<FetchCoordinator>(*client_, *store_, ioc_.get_executor(),
                                                      pool_.get_executor(),
                                                      RangedOptions{.connections = 4, .chunk_bytes = 1 << 20});
    resolve_url_ = hub_->url() + "/org/model/resolve/main/model.safetensors";
    file_ = *RunAsync(ioc_, ResolveFile(*client_, resolve_url_, Secret()));
    digest_ = *store::Digest::ParseHex(file_.etag);
    hub_->ClearLog();
  }
  void TearDown() override {
    // A reader is done once the bytes are verified; let the commits finish
    // before the store goes away.
    if (coordinator_) RunUntilNoFetch();
    coordinator_.reset();
    UpstreamStoreTest::TearDown();
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

  // Runs the event loop until no fetch is running: a reader is done once
  // its bytes are verified, the commit may still be going on.
  void RunUntilNoFetch() {
    ioc_.restart();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (coordinator_->running() != 0 && std::chrono::steady_clock::now() < deadline) {
      ioc_.run_for(milliseconds(10));
      ioc_.restart();
    }
    ASSERT_EQ(coordinator_->running(), 0u);
    // The fetch's last handlers (its Finish) may still be queued.
    ioc_.restart();
    while (ioc_.poll() > 0) ioc_.restart();
  }

  std::unique_ptr<FetchCoordinator> coordinator_;
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

TEST_F(FetchTest, WaitDoneReturnsOnceTheBlobIsInTheStore) {
  auto joined = coordinator_->Join(digest_, file_.size,
                                   {.download_url = file_.download_url, .resolve_url = resolve_url_});
  ASSERT_TRUE(joined);
  auto all = RunAsync(ioc_, joined->fetch->WaitFor(file_.size));
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, file_.size);
  EXPECT_TRUE(joined->fetch->verified());
  auto done = RunAsync(ioc_, joined->fetch->WaitDone());
  EXPECT_FALSE(done) << done.message();
  EXPECT_TRUE(store_->Lookup(digest_));
  auto again = RunAsync(ioc_, joined->fetch->WaitDone());  // and at once after that
  EXPECT_FALSE(again);
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
  RunUntilNoFetch();
  EXPECT_TRUE(store_->Lookup(digest_));
}

}  // namespace
}  // namespace hubcache::proxy
