// Kills a process that writes and commits blobs with SIGKILL at random
// moments, 50 times; after each kill the store must open, verify clean, and
// hold every blob whose commit returned before the kill, byte for byte.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/bytes.h"
#include "store/blob_store.h"
#include "store/cache_dir.h"
#include "store/fsck.h"
#include "tests/store/crash_content.h"
#include "tests/support/subprocess.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;
using testing::ReadAll;

TEST(CrashTest, SigkillAtRandomMomentsNeverCorruptsOrLosesCommittedBlobs) {
  const fs::path root = fs::temp_directory_path() / ("hubcache-crash-test-" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::mt19937 rng(12345);
  std::set<long> committed;
  long next = 0;
  constexpr int kKills = 50;
  for (int kill = 0; kill < kKills; ++kill) {
    auto child = testing::Subprocess::Start({STORE_CRASH_CHILD, root.string(), std::to_string(next)});
    // Let it get going, then kill it at a random moment.
    ASSERT_TRUE(child->WaitForStdout("committed", std::chrono::seconds(30)))
        << "child made no progress: " << child->err();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 120));
    child->Signal(SIGKILL);
    ASSERT_EQ(child->Wait(std::chrono::seconds(30)), 128 + SIGKILL) << child->err();
    std::istringstream lines(child->out());
    std::string word;
    long n = 0;
    while (lines >> word >> n) {
      if (word == "committed") {
        committed.insert(n);
        next = std::max(next, n + 1);
      }
    }

    auto dir = CacheDir::Open(root);
    ASSERT_TRUE(dir) << "the lock must die with the process";
    Options options;
    options.cache_dir = root.string();
    options.min_free_percent = 0;
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    auto report = Fsck(**store, FsckMode::kVerify);
    ASSERT_TRUE(report);
    ASSERT_TRUE(report->clean()) << "after kill " << kill << ": " << report->problems.front();
    for (long c : committed) {
      auto blob = (*store)->Lookup(testing::CrashDigest(c));
      ASSERT_TRUE(blob) << "blob " << c << " committed before kill " << kill << " is gone";
      ASSERT_EQ(ReadAll(blob->fd.get()), testing::CrashContent(c)) << "blob " << c;
    }
  }
  EXPECT_GT(committed.size(), static_cast<std::size_t>(kKills));
  fs::remove_all(root);
}

}  // namespace
}  // namespace hubcache::store
