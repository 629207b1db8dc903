// kill -9 of the daemon under load (issue 18 §4): 50 times, the real
// hubcache is killed at a random moment while clients fetch small files by
// branch and by commit, a 5 MB LFS file, ranges of a 256 MiB file whose
// download is always under way, and API answers. After every kill
// `hubcache verify` finds the store sound, every blob that was there before
// is still there (nothing committed is lost), and the daemon starts again on
// the same cache directory and serves the right bytes.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/stream_client.h"

namespace hubcache::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class KillTest : public HubcacheTest {
 protected:
  // The committed blob files (blobs/<kind>/<xx>/<hex>).
  std::set<std::string> Blobs() const {
    std::set<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(cache_dir() / "blobs", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) out.insert(it->path().filename().string());
    }
    return out;
  }
};

TEST_F(KillTest, Sigkill50TimesUnderLoadLosesAndCorruptsNothing) {
  constexpr int kKills = 50;
  // The big file's download never finishes between kills.
  hub().SetBandwidth(0, 40'000'000);
  const std::string commit = Commit("org/model");
  std::mt19937 rng(20261207);
  std::set<std::string> before;
  int hits_checked = 0;
  int interrupted = 0;  // kills between a commit's rename and its index write
  for (int kill = 0; kill < kKills; ++kill) {
    SCOPED_TRACE(fmt::format("kill {}", kill));
    StartHubcache({"--set", "upstream.connections=4", "--set", "upstream.chunk_bytes=4MiB"});
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::set<std::string> hit_etags;  // blobs served from the store: committed
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        std::mt19937 local(static_cast<unsigned>(kill * 16 + c));
        for (int i = 0; !stop.load(); ++i) {
          std::string target;
          Headers headers;
          switch ((c + i) % 6) {
            case 0: target = "/org/model/resolve/main/config.json"; break;
            case 1: target = "/org/model/resolve/" + commit + "/model.safetensors"; break;
            case 2:
              target = fmt::format("/datasets/org/data/resolve/main/data/part-{:05}.txt",
                                   local() % 1200);
              break;
            case 3:
              target = "/org/big/resolve/main/model.safetensors";
              headers.emplace_back("Range", fmt::format("bytes={}-{}", (local() % 64) << 20,
                                                        ((local() % 64) << 20) + 65535));
              break;
            case 4: target = "/api/models/org/model/revision/main"; break;
            default: target = "/org/model/resolve/main/tokenizer.json"; break;
          }
          auto r = StreamGet(port(), target, headers, seconds(5));
          if (r.status == 200 && r.complete && r.Header("x-cache") == "HIT" &&
              !r.Header("etag").empty()) {
            std::lock_guard lock(mu);
            std::string etag = r.Header("etag");
            if (etag.size() > 2 && etag.front() == '"') etag = etag.substr(1, etag.size() - 2);
            hit_etags.insert(etag);
          }
        }
      });
    }
    std::this_thread::sleep_for(milliseconds(150 + rng() % 600));
    process().Signal(SIGKILL);
    EXPECT_EQ(process().Wait(seconds(30)), 128 + SIGKILL);
    stop = true;
    for (auto& t : clients) t.join();
    StopHubcache();  // already dead: forgets the process

    auto verify = Verify();
    ASSERT_EQ(verify.exit_code, 0) << verify.out << verify.err;
    interrupted += verify.out.find("a crash interrupted") != std::string::npos;
    const std::set<std::string> after = Blobs();
    for (const std::string& blob : before) {
      EXPECT_TRUE(after.contains(blob)) << "lost committed blob " << blob;
    }
    for (const std::string& etag : hit_etags) {
      EXPECT_TRUE(after.contains(etag)) << "lost a blob served as a hit: " << etag;
      ++hits_checked;
    }
    before = after;
  }
  EXPECT_GT(before.size(), 10u);
  EXPECT_GT(hits_checked, 0);
  std::printf("%d kills: %zu blobs kept, %d hits checked, %d commits interrupted and adopted\n",
              kKills, before.size(), hits_checked, interrupted);

  // And it serves exact bytes from what survived.
  hub().SetBandwidth(0, 0);
  StartHubcache();
  auto r = StreamGet(port(), "/org/model/resolve/main/model.safetensors");
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.sha256, hub().Etag("model", "org/model", "main", "model.safetensors"));
}

}  // namespace
}  // namespace hubcache::testing
