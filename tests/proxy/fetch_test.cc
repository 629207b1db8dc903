// Coalescing: many requests for one blob share a single download, each
// following the growing file; blob sources are tried in order and hand over
// to each other; joining never waits for the disk on the event loop.
#include "proxy/fetch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "store/small_blob_cache.h"
#include "tests/support/faulty_disk.h"

#include "proxy/hub_source.h"
#include "proxy/errc.h"
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
    hub_source_ = std::make_unique<HubSource>(
        *client_, RangedOptions{.connections = 4, .chunk_bytes = 1 << 20});
    MakeCoordinator({hub_source_.get()});
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

  void MakeCoordinator(std::vector<BlobSource*> sources) {
    coordinator_ = std::make_unique<FetchCoordinator>(*store_, std::move(sources),
                                                      ioc_.get_executor(), pool_.get_executor());
    coordinator_->set_metrics(&metrics_);
  }

  BlobRequest Request() const {
    return BlobRequest{.digest = digest_,
                       .size = file_.size,
                       .repo = {store::RepoType::kModel, "org/model"},
                       .download_url = file_.download_url,
                       .resolve_url = resolve_url_};
  }

  std::string Expected() const {
    return hub_->FileContent("model", "org/model", commit_, "model.safetensors");
  }

  // One client: join, wait for everything, read it back.
  net::awaitable<Result<std::string>> Reader(bool* started) {
    auto joined = co_await coordinator_->Join(Request());
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

  Metrics metrics_;
  std::unique_ptr<HubSource> hub_source_;
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
  auto joined = RunAsync(ioc_, coordinator_->Join(Request()));
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
  auto joined = RunAsync(ioc_, coordinator_->Join(Request()));
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

// A source that plays another node: it has `bytes` of the blob (from
// `content`), writes them in pieces and then succeeds, fails, or says it has
// nothing.
class FakePeer final : public BlobSource {
 public:
  enum class Ends { kComplete, kFailsAfter, kUnavailable };
  FakePeer(std::string content, std::uint64_t bytes, Ends ends)
      : content_(std::move(content)), bytes_(bytes), ends_(ends) {}

  std::string_view name() const override { return "peer"; }
  CacheStatus served_as() const override { return CacheStatus::kPeer; }
  net::awaitable<Result<void>> Fill(const BlobRequest& request, BlobSink& sink) override {
    ++calls;
    EXPECT_EQ(request.size, content_.size());
    EXPECT_EQ(sink.size(), content_.size());
    if (ends_ == Ends::kUnavailable) co_return Fail(Errc::kSourceUnavailable);
    constexpr std::uint64_t kPiece = 256 * 1024;
    for (std::uint64_t at = 0; at < bytes_; at += kPiece) {
      const std::uint64_t n = std::min(kPiece, bytes_ - at);
      auto written = co_await sink.WriteAt(at, testing::AsBytes(content_, at, n));
      if (!written) co_return Fail(written.error());
    }
    if (ends_ == Ends::kFailsAfter) co_return Fail(make_error_code(boost::system::errc::connection_reset));
    co_return Result<void>();
  }

  int calls = 0;

 private:
  const std::string content_;
  const std::uint64_t bytes_;
  const Ends ends_;
};

TEST_F(FetchTest, AnUnavailableSourceHandsOverToTheHub) {
  FakePeer peer(Expected(), 0, FakePeer::Ends::kUnavailable);
  MakeCoordinator({&peer, hub_source_.get()});
  auto joined = RunAsync(ioc_, coordinator_->Join(Request()));
  ASSERT_TRUE(joined);
  EXPECT_TRUE(joined->started);
  EXPECT_EQ(RunAsync(ioc_, joined->fetch->WaitForSupplier()).value(), CacheStatus::kMiss);
  EXPECT_FALSE(RunAsync(ioc_, joined->fetch->WaitDone()));
  EXPECT_EQ(peer.calls, 1);
  EXPECT_EQ(hub_->BodyBytesSent("xet-bridge"), file_.size);
  auto blob = store_->Lookup(digest_);
  ASSERT_TRUE(blob);
  EXPECT_EQ(testing::ReadAll(blob->fd.get()), Expected());
  const std::string metrics = metrics_.Render(*store_, 0);
  EXPECT_NE(metrics.find("hubcache_source_fetches_total{source=\"peer\",result=\"unavailable\"} 1"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("hubcache_source_fetches_total{source=\"hub\",result=\"ok\"} 1"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("hubcache_source_bytes_total{source=\"hub\"} " + std::to_string(file_.size)),
            std::string::npos) << metrics;
}

TEST_F(FetchTest, APeerThatHasTheBlobServesItWithoutTheHub) {
  FakePeer peer(Expected(), file_.size, FakePeer::Ends::kComplete);
  MakeCoordinator({&peer, hub_source_.get()});
  bool started = false;
  auto read = RunAsync(ioc_, Reader(&started));
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(*read, Expected());
  RunUntilNoFetch();
  EXPECT_EQ(hub_->BodyBytesSent("xet-bridge"), 0u);
  EXPECT_TRUE(store_->Lookup(digest_));
  const std::string metrics = metrics_.Render(*store_, 0);
  EXPECT_NE(metrics.find("hubcache_source_bytes_total{source=\"peer\"} " + std::to_string(file_.size)),
            std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("source=\"hub\""), std::string::npos) << "the Hub was asked";
}

TEST_F(FetchTest, TheHubContinuesWhereAFailedPeerStopped) {
  // 3 of 5 MiB from the peer (chunk-aligned: 1 MiB chunks), then it drops.
  const std::uint64_t held = 3 << 20;
  ASSERT_GT(file_.size, held);
  FakePeer peer(Expected(), held, FakePeer::Ends::kFailsAfter);
  MakeCoordinator({&peer, hub_source_.get()});
  auto joined = RunAsync(ioc_, coordinator_->Join(Request()));
  ASSERT_TRUE(joined);
  EXPECT_EQ(RunAsync(ioc_, joined->fetch->WaitForSupplier()).value(), CacheStatus::kPeer);
  EXPECT_FALSE(RunAsync(ioc_, joined->fetch->WaitDone()));
  auto blob = store_->Lookup(digest_);
  ASSERT_TRUE(blob);
  EXPECT_EQ(testing::ReadAll(blob->fd.get()), Expected());
  // Nothing the peer delivered was fetched again.
  EXPECT_EQ(hub_->BodyBytesSent("xet-bridge"), file_.size - held);
}

TEST_F(FetchTest, APeerThatLiesFailsTheFetchAndNothingIsStored) {
  std::string wrong = Expected();
  wrong[12345] ^= 0x01;
  FakePeer liar(wrong, file_.size, FakePeer::Ends::kComplete);
  MakeCoordinator({&liar, hub_source_.get()});
  bool started = false;
  auto read = RunAsync(ioc_, Reader(&started));
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error(), store::Errc::kDigestMismatch);
  RunUntilNoFetch();
  EXPECT_FALSE(store_->Lookup(digest_));
  EXPECT_EQ(store_->digest_mismatches(), 1u);
  EXPECT_TRUE(fs::is_empty(root_ / "staging"));
  EXPECT_EQ(store_->reserved_bytes(), 0u);
}

TEST_F(FetchTest, WithoutADownloadUrlTheHubSourceAsksForOne) {
  BlobRequest request = Request();
  request.download_url.clear();
  auto joined = RunAsync(ioc_, coordinator_->Join(request));
  ASSERT_TRUE(joined);
  EXPECT_FALSE(RunAsync(ioc_, joined->fetch->WaitDone()));
  EXPECT_TRUE(store_->Lookup(digest_));
  // And with neither URL it is not a source at all.
  request.digest = store::HashBytes(store::DigestKind::kSha256, "elsewhere");
  request.resolve_url.clear();
  auto nowhere = RunAsync(ioc_, coordinator_->Join(request));
  ASSERT_TRUE(nowhere);
  auto supplier = RunAsync(ioc_, nowhere->fetch->WaitForSupplier());
  ASSERT_FALSE(supplier);
  EXPECT_EQ(supplier.error(), Errc::kSourceUnavailable);
  EXPECT_EQ(RunAsync(ioc_, nowhere->fetch->WaitDone()), Errc::kSourceUnavailable);
}

TEST_F(FetchTest, RequestsArrivingWhileTheWriterOpensShareOneFetch) {
  std::vector<Result<FetchCoordinator::Joined>> joined;
  for (int i = 0; i < 3; ++i) {
    net::co_spawn(ioc_, coordinator_->Join(Request()),
                  [&](std::exception_ptr e, Result<FetchCoordinator::Joined> r) {
                    ASSERT_FALSE(e);
                    joined.push_back(std::move(r));
                  });
  }
  // The three start in order on one thread: the second and third run while
  // the first is suspended, its writer being opened on the pool.
  ioc_.restart();
  for (int i = 0; i < 6000 && joined.size() < 3; ++i) ioc_.run_for(milliseconds(10));
  ASSERT_EQ(joined.size(), 3u);
  int started = 0;
  for (auto& j : joined) {
    ASSERT_TRUE(j) << j.error().message();
    started += j->started ? 1 : 0;
    EXPECT_EQ(j->fetch, joined[0]->fetch);
  }
  EXPECT_EQ(started, 1);
}

// Makes the end of every commit slow, as a slow disk makes fsync.
class SlowCommits final : public store::BlobObserver {
 public:
  void OnCommitted(const store::CommittedBlob&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }
  void OnRemoving(const store::Digest&) override {}
};

TEST_F(FetchTest, TheLastByteIsReleasedOnceVerifiedWithoutWaitingForTheCommit) {
  SlowCommits slow;
  store_->AddObserver(&slow);
  auto joined = RunAsync(ioc_, coordinator_->Join(Request()));
  ASSERT_TRUE(joined);
  auto all = RunAsync(ioc_, joined->fetch->WaitFor(file_.size));
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, file_.size);
  EXPECT_TRUE(joined->fetch->verified());
  EXPECT_EQ(coordinator_->running(), 1u) << "the reader waited for the whole commit";
  EXPECT_FALSE(RunAsync(ioc_, joined->fetch->WaitDone()));
  EXPECT_TRUE(store_->Lookup(digest_));
  store_->RemoveObserver(&slow);
}

// Makes every removal slow, as a slow disk makes eviction.
class SlowRemovals final : public store::BlobObserver {
 public:
  void OnCommitted(const store::CommittedBlob&) override {}
  void OnRemoving(const store::Digest&) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
  }
};

// How a miss's Join is slowed down in HitsFlowWhileAMissOpensItsWriter.
enum class SlowDisk { kEviction, kOpen };

class HitsDuringJoinTest : public FetchTest, public ::testing::WithParamInterface<SlowDisk> {
 protected:
  testing::FaultyDisk disk_;  // outlives the store, which TearDown() closes
};

// One event-loop thread runs a miss's Join, whose BeginWrite waits 800 ms for
// the disk (a slow eviction, or a slow open of the staging file through the
// disk seam), and hits of a small cached file meanwhile: the hits keep
// being answered because the disk work runs on the blocking pool.
TEST_P(HitsDuringJoinTest, HitsFlowWhileAMissOpensItsWriter) {
  coordinator_.reset();
  pool_.join();
  store_.reset();
  fs::remove_all(root_);
  testing::FaultyDisk& disk = disk_;
  store::Options options;
  options.cache_dir = root_.string();
  options.min_free_percent = 0;
  options.disk = &disk;
  const std::string small = "a small cached file";
  const std::string filler = testing::Content(1000, 5);
  // Room for the download only if the filler goes.
  if (GetParam() == SlowDisk::kEviction) options.max_bytes = file_.size + small.size() + 500;
  auto reopened = store::BlobStore::Open(options);
  ASSERT_TRUE(reopened);
  store_ = std::move(*reopened);
  const store::Digest small_digest = store::HashBytes(store::DigestKind::kSha256, small);
  for (const std::string* content : {&small, &filler}) {
    auto writer = store_->BeginWrite(store::HashBytes(store::DigestKind::kSha256, *content),
                                     content->size());
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->WriteAt(0, testing::AsBytes(*content)));
    ASSERT_TRUE((*writer)->Commit());
  }
  // The small file stays (pinned) and is in memory.
  ASSERT_TRUE(store_->index().Pin("keep", {small_digest}));
  store::SmallBlobCache small_blobs(*store_);
  ASSERT_TRUE(small_blobs.Get(small_digest));
  SlowRemovals slow_removals;
  if (GetParam() == SlowDisk::kEviction) {
    store_->AddObserver(&slow_removals);
  } else {
    disk.slow_ms = 800;
  }
  net::thread_pool pool(1);
  FetchCoordinator coordinator(*store_, {hub_source_.get()}, ioc_.get_executor(),
                               pool.get_executor());

  bool joined = false;
  int hits_while_joining = 0;
  net::co_spawn(ioc_, coordinator.Join(Request()),
                [&](std::exception_ptr e, Result<FetchCoordinator::Joined> r) {
                  ASSERT_FALSE(e);
                  ASSERT_TRUE(r) << r.error().message();
                  joined = true;
                });
  net::co_spawn(
      ioc_,
      [&]() -> net::awaitable<void> {
        net::steady_timer tick(co_await net::this_coro::executor);
        while (!joined) {
          // What a hit of a small file does on the loop.
          auto blob = store_->GetBlob(small_digest);
          auto content = small_blobs.Get(small_digest);
          if (blob && *blob && content && *content == small) ++hits_while_joining;
          tick.expires_after(milliseconds(5));
          co_await tick.async_wait(net::use_awaitable);
        }
      },
      [](std::exception_ptr e) { ASSERT_FALSE(e); });
  const auto start = std::chrono::steady_clock::now();
  ioc_.restart();
  while (!joined && std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    ioc_.run_for(milliseconds(10));
  }
  ASSERT_TRUE(joined);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(800)) << "the disk was not slow";
  // 800 ms of disk wait at one hit per 5 ms tick: far more than a handful.
  EXPECT_GT(hits_while_joining, 40);
  store_->RemoveObserver(&slow_removals);
  disk.slow_ms = 0;
  ioc_.restart();
  while (coordinator.running() != 0) ioc_.run_for(milliseconds(10));
  ioc_.restart();
  ioc_.poll();
  pool.join();
}

INSTANTIATE_TEST_SUITE_P(SlowDisks, HitsDuringJoinTest,
                         ::testing::Values(SlowDisk::kEviction, SlowDisk::kOpen),
                         [](const auto& info) {
                           return info.param == SlowDisk::kEviction ? "SlowEviction" : "SlowOpen";
                         });

}  // namespace
}  // namespace hubcache::proxy
