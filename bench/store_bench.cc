// Store micro-benchmarks (Google Benchmark):
//   - lookups per second with N blobs indexed (index read + open + fstat),
//   - commit rate of small blobs (hash, fsync, rename, index), one writer and
//     several writers (the index commits concurrent writes as a group),
//   - time to open (and crash-recover) a store holding N blobs.
// N is HUBCACHE_BENCH_BLOBS (default 100000). The populated store is built
// once under $TMPDIR and removed at exit.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "core/log.h"
#include "store/blob_store.h"
#include "store/blob_index.h"

namespace hubcache::store {
namespace {

namespace fs = std::filesystem;

std::size_t BlobCount() {
  const char* env = std::getenv("HUBCACHE_BENCH_BLOBS");
  return env != nullptr ? std::strtoul(env, nullptr, 10) : 100'000;
}

Digest NthDigest(std::size_t n) { return HashBytes(DigestKind::kGitSha1, std::to_string(n)); }

std::unique_ptr<BlobStore> OpenStore(const fs::path& root, bool recover = true) {
  Options options;
  options.cache_dir = root.string();
  options.min_free_percent = 0;
  auto store = BlobStore::Open(options, recover);
  if (!store) std::abort();
  return std::move(*store);
}

// A store with BlobCount() tiny blobs: files written directly, index entries
// added from many threads so that they share group commits.
const fs::path& PopulatedStore() {
  static const fs::path root = [] {
    const fs::path dir = fs::temp_directory_path() / ("hubcache-bench-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    auto store = OpenStore(dir);
    const std::size_t count = BlobCount();
    constexpr int kThreads = 64;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (std::size_t n = t; n < count; n += kThreads) {
          const std::string content = std::to_string(n);
          const Digest d = NthDigest(n);
          const fs::path path = store->BlobPath(d);
          fs::create_directories(path.parent_path());
          std::ofstream(path) << content;
          if (!store->blob_index().PutBlob(d, {content.size(), 0, static_cast<std::int64_t>(n), 0})) {
            std::abort();
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    return dir;
  }();
  return root;
}

void BM_Lookup(benchmark::State& state) {
  auto store = OpenStore(PopulatedStore());
  const std::size_t count = BlobCount();
  std::size_t n = 0;
  for (auto _ : state) {
    auto blob = store->Lookup(NthDigest(n));
    if (!blob) state.SkipWithError("lookup failed");
    benchmark::DoNotOptimize(blob);
    n = (n + 7919) % count;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["blobs"] = static_cast<double>(count);
}
BENCHMARK(BM_Lookup)->Unit(benchmark::kMicrosecond);

void BM_IndexGet(benchmark::State& state) {
  auto store = OpenStore(PopulatedStore());
  const std::size_t count = BlobCount();
  std::size_t n = 0;
  for (auto _ : state) {
    auto record = store->index().GetBlob(NthDigest(n));
    benchmark::DoNotOptimize(record);
    n = (n + 7919) % count;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IndexGet)->Unit(benchmark::kMicrosecond);

void BM_OpenStore(benchmark::State& state) {
  const fs::path& root = PopulatedStore();
  for (auto _ : state) {
    auto store = OpenStore(root, /*recover=*/true);
    benchmark::DoNotOptimize(store);
  }
  state.counters["blobs"] = static_cast<double>(BlobCount());
}
BENCHMARK(BM_OpenStore)->Unit(benchmark::kMillisecond)->Iterations(3);

// 4 KiB blobs committed one after another (threads == 1) or concurrently.
void BM_CommitSmallBlob(benchmark::State& state) {
  static std::unique_ptr<BlobStore> store;
  static fs::path root;
  if (state.thread_index() == 0) {
    root = fs::temp_directory_path() / ("hubcache-bench-commit-" + std::to_string(::getpid()));
    fs::remove_all(root);
    store = OpenStore(root);
  }
  std::string content(4096, '\0');
  std::uint64_t n = static_cast<std::uint64_t>(state.thread_index()) << 40;
  for (auto _ : state) {
    std::memcpy(content.data(), &++n, sizeof(n));
    const Digest d = HashBytes(DigestKind::kSha256, content);
    auto writer = store->BeginWrite(d, content.size());
    if (!writer ||
        !(*writer)->WriteAt(0, {reinterpret_cast<const std::uint8_t*>(content.data()),
                                content.size()}) ||
        !(*writer)->Commit()) {
      state.SkipWithError("commit failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CommitSmallBlob)->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(8)->UseRealTime();

}  // namespace
}  // namespace hubcache::store

int main(int argc, char** argv) {
  hubcache::log::Configure({hubcache::log::Level::kWarn, hubcache::log::Format::kText});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::temp_directory_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("hubcache-bench-") && name.ends_with(std::to_string(::getpid()))) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
  return 0;
}
