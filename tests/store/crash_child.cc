// Child process of crash_test.cc: writes and commits blobs in a loop until it
// is killed. After each commit it prints "committed <n>" on stdout, so the
// parent knows which blobs must survive the SIGKILL.
//
// usage: store_crash_child CACHE_DIR FIRST_N
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "store/blob_store.h"
#include "store/cache_dir.h"
#include "tests/store/crash_content.h"

int main(int argc, char** argv) {
  using namespace hubcache::store;
  if (argc != 3) return 2;
  auto dir = CacheDir::Open(argv[1]);
  if (!dir) return 3;
  Options options;
  options.cache_dir = argv[1];
  options.min_free_percent = 0;
  auto store = BlobStore::Open(options);
  if (!store) return 4;
  const RepoId repo{RepoType::kModel, "org/crash"};
  for (long n = std::atol(argv[2]);; ++n) {
    const std::string content = hubcache::testing::CrashContent(n);
    const Digest digest = hubcache::testing::CrashDigest(n);
    auto writer = (*store)->BeginWrite(digest, content.size());
    if (!writer) continue;  // committed by an earlier child already
    // Second half first, as parallel ranges would.
    const std::size_t half = content.size() / 2;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(content.data());
    if (!(*writer)->WriteAt(half, {bytes + half, content.size() - half})) return 5;
    if (!(*writer)->WriteAt(0, {bytes, half})) return 5;
    if (!(*writer)->Commit()) return 6;
    FileRecord file{true, n % 2 == 1, digest, content.size()};
    if (!(*store)->index().PutFile(repo, std::string(40, 'a'), std::to_string(n), file)) return 7;
    const std::string line = "committed " + std::to_string(n) + "\n";
    if (::write(STDOUT_FILENO, line.data(), line.size()) < 0) return 8;
  }
}
