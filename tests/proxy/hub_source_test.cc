// Upstream → store through the Hub source: files from the fake Hub land in
// the store verified, and a lying upstream leaves nothing behind.
#include "proxy/hub_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "proxy/errc.h"
#include "proxy/fetch.h"
#include "proxy/resolve.h"
#include "store/errc.h"
#include "store/fsck.h"
#include "tests/fakehub/fake_hub.h"
#include "tests/proxy/upstream_store_fixture.h"
#include "tests/support/bytes.h"
#include "tests/support/run_async.h"

namespace hubcache::proxy {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::RunAsync;

class HubSourceTest : public UpstreamStoreTest {
 protected:
  void SetUp() override {
    StartUpstreamAndStore(3, milliseconds(50));
    if (HasFatalFailure()) return;
    source_ = std::make_unique<HubSource>(*client_, RangedOptions{.connections = 4, .chunk_bytes = 1 << 20});
    coordinator_ = std::make_unique<FetchCoordinator>(*store_, std::vector<BlobSource*>{source_.get()},
                                                      ioc_.get_executor(), pool_.get_executor());
  }
  void TearDown() override {
    coordinator_.reset();
    UpstreamStoreTest::TearDown();
  }

  // Resolves `path` at main and fetches it into the store.
  Result<store::Digest> Fetch(const std::string& path) {
    const std::string resolve_url = hub_->url() + "/org/model/resolve/main/" + path;
    auto file = RunAsync(ioc_, ResolveFile(*client_, resolve_url, Secret()));
    if (!file) return Fail(file.error());
    auto digest = store::Digest::ParseHex(file->etag);
    if (!digest) return Fail(digest.error());
    auto joined = RunAsync(ioc_, coordinator_->Join({.digest = *digest,
                                                     .size = file->size,
                                                     .repo = {},
                                                     .download_url = file->download_url,
                                                     .resolve_url = resolve_url}));
    if (!joined) return Fail(joined.error());
    const ErrorCode done = RunAsync(ioc_, joined->fetch->WaitDone());
    if (done) return Fail(done);
    return *digest;
  }

  std::unique_ptr<HubSource> source_;
  std::unique_ptr<FetchCoordinator> coordinator_;
};

TEST_F(HubSourceTest, LfsAndRegularFilesLandVerified) {
  for (const std::string path : {"model.safetensors", "config.json"}) {
    auto digest = Fetch(path);
    ASSERT_TRUE(digest) << path << ": " << digest.error().message();
    EXPECT_EQ(digest->kind(), path == "config.json" ? store::DigestKind::kGitSha1
                                                    : store::DigestKind::kSha256);
    auto blob = store_->Lookup(*digest);
    ASSERT_TRUE(blob) << path;
    EXPECT_EQ(testing::ReadAll(blob->fd.get()), hub_->FileContent("model", "org/model", commit_, path));
  }
  EXPECT_TRUE(store::Fsck(*store_, store::FsckMode::kVerify)->clean());
}

TEST_F(HubSourceTest, AFlippedByteIsCaughtAndNothingIsStored) {
  hub_->AddFault({.path_contains = "xet-bridge", .drop_times = -1, .flip_byte = true,
                  .flip_offset = 4'000'000});
  auto digest = Fetch("model.safetensors");
  ASSERT_FALSE(digest);
  EXPECT_EQ(digest.error(), store::Errc::kDigestMismatch);
  const auto good = store::Digest::ParseHex(hub_->Etag("model", "org/model", commit_, "model.safetensors"));
  EXPECT_FALSE(store_->Lookup(*good));
  EXPECT_TRUE(fs::is_empty(root_ / "staging"));
  EXPECT_EQ(store_->reserved_bytes(), 0u);
}

TEST_F(HubSourceTest, ExpiredUrlIsReResolvedDuringTheDownload) {
  hub_->SetSignedUrlTtl(std::chrono::seconds(0));  // every URL is born expired...
  const std::string resolve_url = hub_->url() + "/org/model/resolve/main/model.safetensors";
  auto file = RunAsync(ioc_, ResolveFile(*client_, resolve_url, Secret()));
  ASSERT_TRUE(file);
  hub_->SetSignedUrlTtl(std::chrono::seconds(3600));  // ...until now
  auto digest = store::Digest::ParseHex(file->etag);
  auto joined = RunAsync(ioc_, coordinator_->Join({.digest = *digest,
                                                   .size = file->size,
                                                   .repo = {},
                                                   .download_url = file->download_url,
                                                   .resolve_url = resolve_url}));
  ASSERT_TRUE(joined);
  EXPECT_FALSE(RunAsync(ioc_, joined->fetch->WaitDone()));
  EXPECT_TRUE(store_->Lookup(*digest));
}

TEST_F(HubSourceTest, AResolveUrlThatNowNamesOtherContentIsRefused) {
  // The metadata says config.json; the resolve URL now gives another file.
  const std::string resolve_url = hub_->url() + "/org/model/resolve/main/model.safetensors";
  auto file = RunAsync(ioc_, ResolveFile(*client_, hub_->url() + "/org/model/resolve/main/config.json",
                                         Secret()));
  ASSERT_TRUE(file);
  auto digest = store::Digest::ParseHex(file->etag);
  auto joined = RunAsync(ioc_, coordinator_->Join(
                                   {.digest = *digest,
                                    .size = file->size,
                                    .repo = {},
                                    .download_url = {},
                                    .resolve_url = resolve_url}));
  ASSERT_TRUE(joined);
  EXPECT_EQ(RunAsync(ioc_, joined->fetch->WaitDone()), Errc::kResumeFailed);
  EXPECT_FALSE(store_->Lookup(*digest));
  EXPECT_EQ(hub_->BodyBytesSent(), 0u);
}

}  // namespace
}  // namespace hubcache::proxy
