// The disk failing under a running daemon (issue 18 §4), for real: the cache
// directory on a tmpfs of a chosen size that fills up mid-download or turns
// read-only, a disk that fails reads of one stored blob with EIO (an
// LD_PRELOAD shim, tests/support/eio_shim.c), and an index (LMDB) whose map
// is full. In each, clients get the right bytes or a clean error, never wrong
// bytes that look whole; the store stays sound (`hubcache verify`), and what
// was lost comes back once the disk allows.
//
// This binary runs in a mount namespace of its own (main() below), so its
// tmpfs mounts are seen by it and the daemons it starts, and vanish with it.
// As root that needs nothing more; otherwise a user namespace maps the user
// to root inside it (Debian allows unprivileged user namespaces).
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/e2e/hubcache_fixture.h"
#include "tests/e2e/stream_client.h"
#include "tests/fakehub/content.h"

namespace hubcache::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::uint64_t kMiB = 1 << 20;
const std::string kBig = "/org/big/resolve/main/model.safetensors";  // 256 MiB
const std::string kWeights = "/org/model/resolve/main/model.safetensors";  // 5 MB
const std::string kConfig = "/org/model/resolve/main/config.json";

std::string Part(int i) {
  return fmt::format("/datasets/org/data/resolve/main/data/part-{:05}.txt", i);
}

class DiskFaultsTest : public HubcacheTest {
 protected:
  void TearDown() override {
    StopHubcache();
    if (mounted_) ::umount2(cache_dir().c_str(), MNT_DETACH);
    HubcacheTest::TearDown();
  }

  // The cache directory on a tmpfs of `bytes`.
  void MountTmpfs(std::uint64_t bytes) {
    fs::create_directories(cache_dir());
    const std::string options = fmt::format("size={}", bytes);
    ASSERT_EQ(::mount("tmpfs", cache_dir().c_str(), "tmpfs", 0, options.c_str()), 0)
        << std::strerror(errno);
    mounted_ = true;
  }
  void Remount(bool read_only) {
    ASSERT_EQ(::mount(nullptr, cache_dir().c_str(), nullptr,
                      MS_REMOUNT | (read_only ? MS_RDONLY : 0), nullptr),
              0)
        << std::strerror(errno);
  }

  // Fills the cache directory's filesystem with a file of its own until a
  // write fails with ENOSPC.
  void FillTheDisk() {
    std::FILE* filler = std::fopen((cache_dir() / "filler").c_str(), "wb");
    ASSERT_NE(filler, nullptr);
    const std::string chunk(kMiB, 'f');
    while (std::fwrite(chunk.data(), 1, chunk.size(), filler) == chunk.size()) {
    }
    std::fclose(filler);
  }

  std::uint64_t StagingBytes() const {
    std::uint64_t bytes = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(cache_dir() / "staging", ec)) {
      bytes += entry.file_size(ec);
    }
    return bytes;
  }

  bool Stored(const std::string& target) {
    return Head(target).Header("x-cache") == "HIT";
  }

  std::string Metrics() { return Get("/metrics").body; }

  // hubcache's environment with the fault shim (tests/support/eio_shim.c)
  // preloaded and `knobs` set.
  static std::map<std::string, std::string> ShimEnv(std::map<std::string, std::string> knobs) {
    std::string preload = HUBCACHE_EIO_SHIM;
    if (std::string runtime = HUBCACHE_ASAN_RUNTIME; !runtime.empty()) {
      preload = runtime + ":" + preload;  // ASan's runtime must come first
    }
    knobs["LD_PRELOAD"] = preload;
    return knobs;
  }

  bool mounted_ = false;
};

// A download fills the disk: the store's writes fail with ENOSPC (another
// program took the space). The client reading it is cut (FIN, never a short
// body that looks whole), resumes with a Range like huggingface_hub and
// huggingface.js do, and gets the rest straight from the Hub, since the store
// has no room now; what was there keeps being served; nothing half-written
// stays behind; once the space is free again, the file is stored.
TEST_F(DiskFaultsTest, AFullDiskMidDownloadEndsTheStoringNotTheServing) {
  MountTmpfs(320 * kMiB);
  StartHubcache();
  ASSERT_EQ(Get(kConfig).status, 200);
  ASSERT_TRUE(Stored(kConfig));
  const std::string content = Content("org/big", "model.safetensors");
  hub().SetBandwidth(0, 40'000'000);
  auto first = std::async(std::launch::async, [&] { return StreamGet(port(), kBig); });
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (StagingBytes() < 32 * kMiB && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_GE(StagingBytes(), 32 * kMiB);
  FillTheDisk();
  const StreamResult cut = first.get();
  EXPECT_EQ(cut.status, 200);
  EXPECT_FALSE(cut.complete);
  EXPECT_LT(cut.body_bytes, content.size());
  EXPECT_EQ(cut.sha256, fakehub::Sha256Hex(std::string_view(content).substr(0, cut.body_bytes)));

  // The client resumes where it was cut: the rest comes through uncached.
  hub().SetBandwidth(0, 0);
  const StreamResult rest =
      StreamGet(port(), kBig, {{"Range", fmt::format("bytes={}-", cut.body_bytes)}});
  EXPECT_EQ(rest.status, 206);
  EXPECT_TRUE(rest.complete);
  EXPECT_EQ(rest.sha256, fakehub::Sha256Hex(std::string_view(content).substr(cut.body_bytes)));
  // The partial download is gone (its space is back to the filesystem), and
  // nothing of it reached blobs/.
  EXPECT_EQ(StagingBytes(), 0u);
  EXPECT_FALSE(Stored(kBig));
  // What the store holds is still served while the disk is full.
  auto config = Get(kConfig);
  EXPECT_EQ(config.status, 200);
  EXPECT_EQ(config.body, Content("org/model", "config.json"));
  EXPECT_EQ(config.Header("x-cache"), "HIT");
  // So is a small file the store has no room for.
  auto part = Get(Part(7));
  EXPECT_EQ(part.status, 200);
  EXPECT_EQ(part.body, hub().FileContent("dataset", "org/data", "main", "data/part-00007.txt"));

  // The space comes back: the file is stored, and read back exact.
  fs::remove(cache_dir() / "filler");
  const StreamResult whole = StreamGet(port(), kBig);
  EXPECT_TRUE(whole.complete);
  EXPECT_EQ(whole.sha256, fakehub::Sha256Hex(content));
  EXPECT_TRUE(Stored(kBig));
  const StreamResult hit = StreamGet(port(), kBig);
  EXPECT_EQ(hit.Header("x-cache"), "HIT");
  EXPECT_EQ(hit.sha256, fakehub::Sha256Hex(content));
  StopHubcache();
  const RunResult verify = Verify();
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// The filesystem under the cache turns read-only while hubcache runs (ext4's
// errors=remount-ro; the shim's EROFS switch, since a tmpfs with files open
// for writing cannot be remounted read-only): stored files keep being
// served, others come straight from the Hub, nothing crashes; once it is
// writable again, new files are stored. A daemon started on a read-only
// cache directory (a real read-only tmpfs) says so and exits.
TEST_F(DiskFaultsTest, AReadOnlyCacheDirectoryServesWhatItHoldsAndPassesTheRestThrough) {
  MountTmpfs(64 * kMiB);
  const fs::path read_only = cache_dir().parent_path() / "read-only";
  StartHubcache({}, ShimEnv({{"EROFS_SHIM_DIR", cache_dir().string()},
                             {"EROFS_SHIM_SWITCH", read_only.string()}}));
  ASSERT_EQ(Get(kConfig).status, 200);
  ASSERT_EQ(Get(kWeights).status, 200);
  ASSERT_TRUE(Stored(kWeights));
  std::ofstream(read_only).put('1');
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    auto config = Get(kConfig);
    EXPECT_EQ(config.status, 200);
    EXPECT_TRUE(config.body == Content("org/model", "config.json"));
    auto weights = Get(kWeights, {{"Range", "bytes=1000-1999"}});
    EXPECT_EQ(weights.status, 206);
    EXPECT_TRUE(weights.body == Content("org/model", "model.safetensors").substr(1000, 1000));
    // Misses: a small file, an LFS file, a HEAD, an API answer.
    auto part = Get(Part(100 + round));
    EXPECT_EQ(part.status, 200);
    EXPECT_TRUE(part.body == hub().FileContent("dataset", "org/data", "main",
                                               fmt::format("data/part-{:05}.txt", 100 + round)));
    auto big = Get("/datasets/org/data/resolve/main/data/big.parquet");
    EXPECT_EQ(big.status, 200);
    EXPECT_TRUE(big.body == hub().FileContent("dataset", "org/data", "main", "data/big.parquet"));
    EXPECT_EQ(Head(Part(200)).status, 200);
    EXPECT_EQ(Get("/api/datasets/org/data/revision/main").status, 200);
  }
  EXPECT_FALSE(Stored(Part(100)));
  EXPECT_TRUE(process().Running());
  fs::remove(read_only);
  ASSERT_EQ(Get(Part(300)).status, 200);
  EXPECT_TRUE(Stored(Part(300)));
  StopHubcache();
  const RunResult verify = Verify();
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  Remount(/*read_only=*/true);
  auto refused = Subprocess::Start({HUBCACHE_BINARY, "serve", "--listen", "127.0.0.1:0",
                                    "--cache-dir", cache_dir().string(), "--upstream",
                                    hub().url()});
  const auto status = refused->Wait(seconds(30));
  EXPECT_NE(status, 0);
  EXPECT_NE(refused->err().find("Read-only file system"), std::string::npos) << refused->err();
  EXPECT_NE(refused->err().find(cache_dir().string()), std::string::npos) << refused->err();
  Remount(/*read_only=*/false);
}

// Requests for a file whose answer is cached (a HEAD before) join a
// download that then fails to open its writer: the staging directory refuses
// (EROFS, after 300 ms). They have no download URL of their own to pass
// through from, so they ask the Hub for one (they got a 502: a pass-through
// to nowhere).
TEST_F(DiskFaultsTest, RequestsThatJoinADownloadThatCannotStartGetTheFileFromTheHub) {
  MountTmpfs(64 * kMiB);
  const fs::path read_only = cache_dir().parent_path() / "read-only";
  StartHubcache({}, ShimEnv({{"EROFS_SHIM_DIR", (cache_dir() / "staging").string()},
                             {"EROFS_SHIM_SWITCH", read_only.string()},
                             {"EROFS_SHIM_OPEN_DELAY_MS", "300"}}));
  std::ofstream(read_only).put('1');
  const std::string big = "/datasets/org/data/resolve/main/data/big.parquet";
  ASSERT_EQ(Head(big).status, 200);
  std::vector<HttpResponse> burst(8);
  std::vector<std::thread> clients;
  clients.emplace_back([&] { burst[0] = Get(big); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (std::size_t i = 1; i < burst.size(); ++i) {
    clients.emplace_back([&, i] { burst[i] = Get(big); });
  }
  for (auto& t : clients) t.join();
  const std::string want = hub().FileContent("dataset", "org/data", "main", "data/big.parquet");
  for (const auto& r : burst) {
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(r.body == want);
  }
  fs::remove(read_only);
  StopHubcache();
  const RunResult verify = Verify();
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// The disk fails to read a stored blob back (EIO). The blob leaves the store
// for quarantine/ and is fetched again: a small file's client gets the right
// bytes at once; a large file's client, whose head is out already, is cut
// and gets the right bytes when it asks again. The other blobs are untouched.
TEST_F(DiskFaultsTest, AnUnreadableStoredBlobIsQuarantinedAndFetchedAgain) {
  StartHubcache();
  ASSERT_EQ(Get(kConfig).status, 200);
  ASSERT_EQ(Get(kWeights).status, 200);
  ASSERT_EQ(Get(Part(1)).status, 200);
  StopHubcache();
  const std::string config_digest = hub().Etag("model", "org/model", "main", "config.json");
  const std::string weights_digest = hub().Etag("model", "org/model", "main", "model.safetensors");
  auto blob_file = [&](const std::string& etag, const char* kind) {
    std::string hex = etag;
    std::erase(hex, '"');
    return cache_dir() / "blobs" / kind / hex.substr(0, 2) / hex;
  };
  const fs::path config_file = blob_file(config_digest, "sha1");
  const fs::path weights_file = blob_file(weights_digest, "sha256");
  ASSERT_TRUE(fs::exists(config_file)) << config_file;
  ASSERT_TRUE(fs::exists(weights_file)) << weights_file;
  // Reads of these two files (by device and inode) fail with EIO.
  const fs::path control = cache_dir().parent_path() / "eio";
  {
    std::ofstream out(control);
    for (const fs::path& file : {config_file, weights_file}) {
      struct stat st {};
      ASSERT_EQ(::stat(file.c_str(), &st), 0);
      out << st.st_dev << " " << st.st_ino << "\n";
    }
  }
  StartHubcache({}, ShimEnv({{"EIO_SHIM_FILE", control.string()}}));
  hub().ClearLog();

  auto config = Get(kConfig);
  ASSERT_EQ(config.status, 200);
  EXPECT_TRUE(config.body == Content("org/model", "config.json"));
  // Fetched again: its bytes came from the Hub once more.
  EXPECT_EQ(hub().BodyBytesSent("config.json"), config.body.size());

  const std::string weights = Content("org/model", "model.safetensors");
  const StreamResult cut = StreamGet(port(), kWeights);
  EXPECT_FALSE(cut.complete);
  EXPECT_EQ(cut.body_bytes, 0u);
  const StreamResult again = StreamGet(port(), kWeights);
  EXPECT_TRUE(again.complete) << again.status << process().err();
  EXPECT_EQ(again.sha256, fakehub::Sha256Hex(weights));

  // Both stored again (new files, readable), both bad files in quarantine/.
  EXPECT_TRUE(Stored(kConfig));
  EXPECT_TRUE(Stored(kWeights));
  EXPECT_EQ(Get(kConfig).body, Content("org/model", "config.json"));
  EXPECT_EQ(StreamGet(port(), kWeights).sha256, fakehub::Sha256Hex(weights));
  EXPECT_EQ(Get(Part(1)).Header("x-cache"), "HIT");
  EXPECT_NE(Metrics().find("hubcache_store_quarantined_total 2"), std::string::npos);
  std::size_t quarantined = 0;
  for (const auto& entry : fs::directory_iterator(cache_dir() / "quarantine")) {
    (void)entry;
    ++quarantined;
  }
  EXPECT_EQ(quarantined, 2u);
  StopHubcache();
  const RunResult verify = Verify();
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// The index's map is full (store.index_max_bytes): its writes fail, and
// hubcache goes on serving exact bytes without storing what it cannot
// record; the store stays sound, and a restart with a larger map stores again.
TEST_F(DiskFaultsTest, AFullIndexFailsCleanlyAndARestartWithMoreGrowsIt) {
  StartHubcache({"--set", "store.index_max_bytes=256KiB"});
  int stored = 0;
  for (int i = 0; i < 1200; ++i) {
    auto part = Get(Part(i));
    ASSERT_EQ(part.status, 200) << i;
    ASSERT_EQ(part.body, hub().FileContent("dataset", "org/data", "main",
                                           fmt::format("data/part-{:05}.txt", i)))
        << i;
    if (Stored(Part(i))) ++stored;
  }
  EXPECT_GT(stored, 0);
  EXPECT_LT(stored, 1200);  // the map filled up on the way
  EXPECT_EQ(Get(kConfig).body, Content("org/model", "config.json"));
  EXPECT_EQ(StreamGet(port(), kWeights).sha256,
            fakehub::Sha256Hex(Content("org/model", "model.safetensors")));
  EXPECT_TRUE(process().Running());
  // The log names the problem.
  process().Drain();
  EXPECT_NE(process().err().find("mapsize limit reached"), std::string::npos);
  StopHubcache();
  RunResult verify = Verify();
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  StartHubcache();
  EXPECT_EQ(Get(Part(0)).Header("x-cache"), "HIT");
  ASSERT_EQ(Get(Part(1199)).status, 200);
  EXPECT_TRUE(Stored(Part(1199)));
  ASSERT_EQ(Get(kWeights).status, 200);
  EXPECT_TRUE(Stored(kWeights));
  StopHubcache();
  verify = Verify();
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// A mount namespace for this process and its children (see the top).
bool EnterMountNamespace(std::string& why) {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  int flags = CLONE_NEWNS;
  if (uid != 0) flags |= CLONE_NEWUSER;
  if (::unshare(flags) != 0) {
    why = fmt::format("unshare: {}", std::strerror(errno));
    return false;
  }
  if (uid != 0) {
    auto write = [](const char* path, const std::string& text) {
      std::ofstream out(path);
      out << text;
      return static_cast<bool>(out.flush());
    };
    if (!write("/proc/self/setgroups", "deny") ||
        !write("/proc/self/uid_map", fmt::format("0 {} 1", uid)) ||
        !write("/proc/self/gid_map", fmt::format("0 {} 1", gid))) {
      why = "cannot map the user into its namespace";
      return false;
    }
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    why = fmt::format("making / private: {}", std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace
}  // namespace hubcache::testing

int main(int argc, char** argv) {
  // Before any thread starts (a user namespace needs a single thread).
  std::string why;
  if (!hubcache::testing::EnterMountNamespace(why)) {
    std::fprintf(stderr, "disk fault tests need a mount namespace: %s\n", why.c_str());
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
