// Fetch coordination: one download per blob, however many clients want it
// (DESIGN.md "Fetch coordination").
//
// FetchCoordinator::Join() returns the Fetch of a digest, starting it when
// none is running. Starting opens the store writer (BeginWrite reserves
// space, may evict, creates the staging file: disk work, run on the blocking
// pool) and then asks the coordinator's sources in order (proxy/
// blob_source.h: on a cluster the peers, then the Hub) to fill it: a source
// that cannot supply the blob, or fails before the bytes are verified, hands
// over to the next, which continues from the bytes already on disk. The
// coordinator verifies the digest and commits; no source can make a blob
// visible. Every request for the same digest that arrives meanwhile, even
// while the writer is being opened, joins the same Fetch and streams from the
// growing staging file: WaitFor(n) returns once n contiguous bytes are on
// disk (or the fetch has ended), and OpenReader() gives a descriptor of the
// blob's bytes whatever became of its file: renamed at the commit, evicted
// right after it, or unlinked when the fetch failed.
//
// A Fetch's mutable state lives on its own strand; the waiters' timer is only
// touched there. The coordinator's map is behind a mutex that is never held
// across a suspension.
//
// Lifetime: the coordinator and its sources must outlive their fetches'
// coroutines (daemon/ owns them for the life of the process).
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/asio.h"
#include "core/result.h"
#include "core/unique_fd.h"
#include "proxy/blob_source.h"
#include "proxy/metrics.h"
#include "store/blob_store.h"

namespace hubcache::proxy {

class Fetch {
 public:
  // Waits until the bytes [from, bytes) are on disk, or the fetch failed, or
  // it completed. Returns the end of the run of on-disk bytes starting at
  // `from` that a reader may send, which is >= `bytes` unless the fetch
  // failed; with `from` 0 that is the contiguous prefix. Parallel ranged
  // downloads fill the file out of order, so a range far ahead is served as
  // soon as its own bytes are there. The last byte of the blob is released
  // only once the blob is verified: a client reading the whole file can
  // never receive a complete body of wrong content (it gets a cut connection
  // instead and retries). It does not wait for the commit (fsync, rename,
  // index): the staging file holds exactly the blob by then, and a client
  // need not wait for the disk. Errors: the fetch's failure before the bytes
  // were verified. Runs on the caller's executor; hops to the fetch's strand
  // internally. REQUIRES: the Fetch came from a successful Join().
  net::awaitable<Result<std::uint64_t>> WaitFor(std::uint64_t bytes, std::uint64_t from = 0);

  // Waits until every byte is on disk and verified (the commit may still be
  // running). Errors: the fetch's failure before that.
  net::awaitable<Result<void>> WaitVerified();

  // Waits until the fetch has ended: committed (the blob is in the store) or
  // failed. Returns its outcome.
  net::awaitable<ErrorCode> WaitDone();

  // Waits until some source has written a byte (or the fetch ended) and
  // returns what X-Cache says of the bytes: kMiss when they come from the
  // Hub, kPeer from another node (that of the last source tried when the
  // fetch completed without writing a byte: an empty blob). Errors: the
  // fetch's failure when it failed before any byte arrived, so that the
  // client can get an error status instead of a cut 200.
  net::awaitable<Result<CacheStatus>> WaitForSupplier();

  // Waits until the writer is open, or opening failed (its error). A Fetch
  // from Find() may still be opening; after this succeeds, WaitFor and
  // OpenReader may be used as on one from Join().
  net::awaitable<Result<void>> WaitOpened();

  // True once every byte is on disk and verified (any thread); the commit
  // may still be running.
  bool verified() const {
    return opened_.load(std::memory_order_acquire) && writer_->verified();
  }

  // A descriptor of the blob's bytes, at any time: after the commit, after
  // an eviction of the committed blob, and after a failure too (see
  // store::BlobWriter::OpenReader).
  // REQUIRES: the Fetch came from a successful Join().
  Result<UniqueFd> OpenReader() const { return writer_->OpenReader(); }

  const store::Digest& digest() const { return digest_; }
  std::uint64_t size() const { return size_; }

  // A client streaming this download (the status page's "readers"): counted
  // while the returned object lives.
  class Reader {
   public:
    explicit Reader(std::shared_ptr<Fetch> fetch) : fetch_(std::move(fetch)) {
      fetch_->readers_.fetch_add(1);
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() { fetch_->readers_.fetch_sub(1); }

   private:
    std::shared_ptr<Fetch> fetch_;
  };

  struct Private;  // construction is reserved to the coordinator
  Fetch(Private, net::any_io_executor executor, const store::Digest& digest, std::uint64_t size);

 private:
  friend class FetchCoordinator;
  class Sink;
  net::awaitable<Result<std::uint64_t>> WaitOnStrand(std::uint64_t bytes, std::uint64_t from);
  // Any thread: the writer is open; wakes the joiners waiting for it.
  static void Opened(const std::shared_ptr<Fetch>& fetch, std::unique_ptr<store::BlobWriter> writer);
  // Any thread: wake the waiters (the posted work keeps `fetch` alive).
  static void Progress(const std::shared_ptr<Fetch>& fetch);
  // Any thread: record the outcome and wake the waiters.
  static void Finish(const std::shared_ptr<Fetch>& fetch, ErrorCode result);

  const store::Digest digest_;
  const std::uint64_t size_;
  net::strand<net::any_io_executor> strand_;
  // Set once, before opened_ turns true; read only after that.
  std::unique_ptr<store::BlobWriter> writer_;
  std::atomic<bool> opened_{false};
  // The X-Cache value of the source being tried, and of the one that wrote
  // the first byte (-1 until then).
  std::atomic<int> trying_{static_cast<int>(CacheStatus::kMiss)};
  std::atomic<int> supplier_{-1};
  std::atomic<int> readers_{0};
  mutable std::mutex via_mu_;
  std::string via_;  // GUARDED_BY(via_mu_): see BlobSink::Via
  // Set before the Fetch is published, constant after.
  store::RepoId repo_;
  std::string path_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  net::steady_timer wake_;  // on strand_; cancelled on progress
  bool done_ = false;       // on strand_
  ErrorCode result_;        // on strand_
};

class FetchCoordinator {
 public:
  // `sources` are asked in order for each blob; they must outlive the
  // coordinator. `io` runs the downloads (the event loop); `blocking` does
  // disk work.
  FetchCoordinator(store::BlobStore& store, std::vector<BlobSource*> sources,
                   net::any_io_executor io, net::any_io_executor blocking)
      : store_(store), sources_(std::move(sources)), io_(std::move(io)),
        blocking_(std::move(blocking)) {}

  struct Joined {
    std::shared_ptr<Fetch> fetch;
    bool started = false;  // this call started it (false: coalesced onto a running one)
  };

  // The running Fetch of `request.digest`, or a new one filling
  // `request.size` bytes from the sources. The writer is opened on the
  // blocking pool; requests that arrive meanwhile wait for it and share it.
  // Errors: those of BlobStore::BeginWrite (kAlreadyExists when the blob is
  // committed meanwhile: look it up; store::Errc::kNoSpace or kBusy: serve
  // pass-through). Executor: the caller's.
  net::awaitable<Result<Joined>> Join(BlobRequest request) {
    return JoinAs(this, std::move(request));
  }

  // The running Fetch of `digest` (possibly still opening its writer), or
  // null.
  std::shared_ptr<Fetch> Find(const store::Digest& digest) const;

  // Where fetches report which source served how many bytes (optional).
  void set_metrics(Metrics* metrics) { metrics_ = metrics; }

  // Fetches running now.
  std::size_t running() const;

  // What a running fetch is doing, for the status page.
  struct Progress {
    store::Digest digest;
    store::RepoId repo;   // of the request that started it
    std::string path;     // empty when it did not come from a client's request
    std::uint64_t size = 0;
    std::uint64_t bytes = 0;  // the contiguous prefix on disk
    CacheStatus source = CacheStatus::kMiss;  // the source being tried (MISS: the Hub; PEER)
    std::string via;                          // how it gets the bytes, when it says (BlobSink::Via)
    int readers = 0;          // clients streaming it now
    double seconds = 0;       // since it started
  };
  // Every running fetch, oldest first. Any thread; bounded work.
  std::vector<Progress> Snapshot() const;

 private:
  // Join's body. Static with explicit arguments, like Run.
  static net::awaitable<Result<Joined>> JoinAs(FetchCoordinator* self, BlobRequest request);
  // Fills the writer from the sources, verifies, commits, then records the
  // outcome. Static with explicit arguments: GCC 12 mishandles by-value
  // shared_ptr parameters of member coroutines.
  static net::awaitable<void> Run(FetchCoordinator* self, std::shared_ptr<Fetch> fetch,
                                  BlobRequest request);
  // Tries the sources in order until one fills every byte. Returns the
  // last failure when none did.
  static net::awaitable<Result<void>> FillFromSources(FetchCoordinator* self,
                                                      std::shared_ptr<Fetch> fetch,
                                                      const BlobRequest& request);
  void Forget(const std::shared_ptr<Fetch>& fetch);

  store::BlobStore& store_;
  const std::vector<BlobSource*> sources_;
  net::any_io_executor io_;
  net::any_io_executor blocking_;
  Metrics* metrics_ = nullptr;
  mutable std::mutex mu_;
  std::map<store::Digest, std::shared_ptr<Fetch>> running_;  // GUARDED_BY(mu_)
};

}  // namespace hubcache::proxy
