// Fetch coordination: one upstream download per blob, however many clients
// want it (DESIGN.md "Fetch coordination").
//
// FetchCoordinator::Join() returns the Fetch of a digest, starting it when
// none is running: it opens the store writer (reserving space), resolves
// nothing itself (the caller passes where the bytes are), and downloads with
// FetchInto(). Every request for the same digest that arrives meanwhile joins
// the same Fetch and streams from the growing staging file: WaitFor(n) returns
// once n contiguous bytes are on disk (or the fetch has ended), and
// OpenReader() gives a descriptor that stays valid across the final rename.
//
// A Fetch's mutable state lives on its own strand; the waiters' timer is only
// touched there. The coordinator's map is behind a mutex that is never held
// across a suspension.
//
// Lifetime: the coordinator must outlive its fetches' coroutines (daemon/
// owns it for the life of the process).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "core/asio.h"
#include "core/result.h"
#include "core/unique_fd.h"
#include "proxy/blob_fetch.h"
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
  // internally.
  net::awaitable<Result<std::uint64_t>> WaitFor(std::uint64_t bytes, std::uint64_t from = 0);

  // Waits until the fetch has ended: committed (the blob is in the store) or
  // failed. Returns its outcome.
  net::awaitable<ErrorCode> WaitDone();

  // True once every byte is on disk and verified (any thread); the commit
  // may still be running.
  bool verified() const { return writer_->verified(); }

  // A descriptor of the staging file (valid after commit and abort too).
  Result<UniqueFd> OpenReader() const { return writer_->OpenReader(); }

  const store::Digest& digest() const { return writer_->digest(); }
  std::uint64_t size() const { return writer_->expected_size(); }

  struct Private;  // construction is reserved to the coordinator
  Fetch(Private, net::any_io_executor executor, std::unique_ptr<store::BlobWriter> writer);

 private:
  friend class FetchCoordinator;
  net::awaitable<Result<std::uint64_t>> WaitOnStrand(std::uint64_t bytes, std::uint64_t from);
  // Any thread: wake the waiters (the posted work keeps `fetch` alive).
  static void Progress(const std::shared_ptr<Fetch>& fetch);
  // Any thread: record the outcome and wake the waiters.
  static void Finish(const std::shared_ptr<Fetch>& fetch, ErrorCode result);

  net::strand<net::any_io_executor> strand_;
  std::unique_ptr<store::BlobWriter> writer_;
  net::steady_timer wake_;  // on strand_; cancelled on progress
  bool done_ = false;       // on strand_
  ErrorCode result_;        // on strand_
};

class FetchCoordinator {
 public:
  // `io` runs the downloads (the event loop); `blocking` does disk work.
  FetchCoordinator(HubClient& client, store::BlobStore& store, net::any_io_executor io,
                   net::any_io_executor blocking, RangedOptions options)
      : client_(client),
        store_(store),
        io_(std::move(io)),
        blocking_(std::move(blocking)),
        options_(options) {}

  struct Joined {
    std::shared_ptr<Fetch> fetch;
    bool started = false;  // this call started it (false: coalesced onto a running one)
  };

  // The running Fetch of `digest`, or a new one downloading `size` bytes as
  // `how` says. Errors: those of BlobStore::BeginWrite (kAlreadyExists when
  // the blob is committed meanwhile: look it up; store::Errc::kNoSpace: serve
  // pass-through).
  Result<Joined> Join(const store::Digest& digest, std::uint64_t size, BlobFetch how);

  // The running Fetch of `digest`, or null.
  std::shared_ptr<Fetch> Find(const store::Digest& digest) const;

  // Where finished downloads report the bytes they received (optional).
  void set_metrics(Metrics* metrics) { metrics_ = metrics; }

  // Fetches running now.
  std::size_t running() const;

 private:
  // Downloads, then records the outcome. Static with explicit arguments:
  // GCC 12 mishandles by-value shared_ptr parameters of member coroutines.
  static net::awaitable<void> Run(FetchCoordinator* self, std::shared_ptr<Fetch> fetch,
                                  BlobFetch how);

  HubClient& client_;
  store::BlobStore& store_;
  net::any_io_executor io_;
  net::any_io_executor blocking_;
  RangedOptions options_;
  Metrics* metrics_ = nullptr;
  mutable std::mutex mu_;
  std::map<store::Digest, std::shared_ptr<Fetch>> running_;  // GUARDED_BY(mu_)
};

}  // namespace hubcache::proxy
