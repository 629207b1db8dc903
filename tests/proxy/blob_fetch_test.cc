// Upstream → store: files from the fake Hub land in the store verified, and
// a lying upstream leaves nothing behind.
#include "proxy/blob_fetch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

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

class BlobFetchTest : public UpstreamStoreTest {
 protected:
  void SetUp() override { StartUpstreamAndStore(3, milliseconds(50)); }

  // Resolves `path` at main and fetches it into the store.
  Result<store::Digest> Fetch(const std::string& path) {
    const std::string resolve_url = hub_->url() + "/org/model/resolve/main/" + path;
    auto file = RunAsync(ioc_, ResolveFile(*client_, resolve_url, Secret()));
    if (!file) return Fail(file.error());
    auto digest = store::Digest::ParseHex(file->etag);
    if (!digest) return Fail(digest.error());
    auto writer = store_->BeginWrite(*digest, file->size);
    if (!writer) return Fail(writer.error());
    auto fetched = RunAsync(ioc_, FetchInto(*client_, **writer, pool_.get_executor(),
                                            {.download_url = file->download_url,
                                             .resolve_url = resolve_url},
                                            {.connections = 4, .chunk_bytes = 1 << 20}));
    if (!fetched) return Fail(fetched.error());
    return *digest;
  }

};

TEST_F(BlobFetchTest, LfsAndRegularFilesLandVerified) {
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

TEST_F(BlobFetchTest, ReadersAreToldOfVerifiedBytesBeforeTheCommitWaitsForTheDisk) {
  const std::string resolve_url = hub_->url() + "/org/model/resolve/main/model.safetensors";
  auto file = RunAsync(ioc_, ResolveFile(*client_, resolve_url, Secret()));
  ASSERT_TRUE(file);
  auto digest = store::Digest::ParseHex(file->etag);
  auto writer = store_->BeginWrite(*digest, file->size);
  ASSERT_TRUE(writer);
  int calls = 0;
  bool verified_then = false;
  bool visible_then = true;
  std::function<void()> on_verified = [&] {
    ++calls;
    verified_then = (*writer)->verified();
    visible_then = store_->Lookup(*digest).has_value();
  };
  auto fetched = RunAsync(ioc_, FetchInto(*client_, **writer, pool_.get_executor(),
                                          {.download_url = file->download_url,
                                           .resolve_url = resolve_url},
                                          {.connections = 4, .chunk_bytes = 1 << 20}, {},
                                          on_verified));
  ASSERT_TRUE(fetched) << fetched.error().message();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(verified_then);
  EXPECT_FALSE(visible_then) << "on_verified came after the commit";
  EXPECT_TRUE(store_->Lookup(*digest));
}

TEST_F(BlobFetchTest, AFlippedByteIsCaughtAndNothingIsStored) {
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

TEST_F(BlobFetchTest, ExpiredUrlIsReResolvedDuringTheDownload) {
  hub_->SetSignedUrlTtl(std::chrono::seconds(0));  // every URL is born expired...
  const std::string resolve_url = hub_->url() + "/org/model/resolve/main/model.safetensors";
  auto file = RunAsync(ioc_, ResolveFile(*client_, resolve_url, Secret()));
  ASSERT_TRUE(file);
  hub_->SetSignedUrlTtl(std::chrono::seconds(3600));  // ...until now
  auto digest = store::Digest::ParseHex(file->etag);
  auto writer = store_->BeginWrite(*digest, file->size);
  ASSERT_TRUE(writer);
  auto fetched = RunAsync(ioc_, FetchInto(*client_, **writer, pool_.get_executor(),
                                          {.download_url = file->download_url,
                                           .resolve_url = resolve_url},
                                          {.connections = 4, .chunk_bytes = 1 << 20}));
  ASSERT_TRUE(fetched) << fetched.error().message();
  EXPECT_TRUE(store_->Lookup(*digest));
}

}  // namespace
}  // namespace hubcache::proxy
