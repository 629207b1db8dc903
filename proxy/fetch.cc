#include "proxy/fetch.h"

#include <algorithm>

#include "core/log.h"
#include "core/offload.h"
#include "proxy/errc.h"
#include "store/errc.h"

namespace hubcache::proxy {

struct Fetch::Private {};

// The BlobSink a source writes through: disk writes on the blocking pool,
// each one waking the readers. One per source attempt, so that it can count
// what that source wrote.
class Fetch::Sink final : public BlobSink {
 public:
  Sink(std::shared_ptr<Fetch> fetch, net::any_io_executor blocking)
      : fetch_(std::move(fetch)), blocking_(std::move(blocking)) {}

  net::awaitable<Result<void>> WriteAt(std::uint64_t offset,
                                       std::span<const std::uint8_t> data) override {
    // The span stays valid while this coroutine is suspended (BlobSink rule).
    co_return co_await core::Offload(blocking_, [this, offset, data] {
      auto written = fetch_->writer_->WriteAt(offset, data);
      if (written) {
        bytes_.fetch_add(data.size(), std::memory_order_relaxed);
        int none = -1;
        fetch_->supplier_.compare_exchange_strong(none, fetch_->trying_.load());
        Fetch::Progress(fetch_);
      }
      return written;
    });
  }

  std::uint64_t WrittenFrom(std::uint64_t offset) const override {
    return fetch_->writer_->WrittenFrom(offset);
  }
  void Supplying() override {
    int none = -1;
    if (fetch_->supplier_.compare_exchange_strong(none, fetch_->trying_.load())) {
      Fetch::Progress(fetch_);
    }
  }
  std::uint64_t size() const override { return fetch_->size_; }
  void Via(std::string_view how) override {
    std::lock_guard lock(fetch_->via_mu_);
    fetch_->via_ = how;
  }

  // Bytes this source wrote (including any that another write had already
  // put there).
  std::uint64_t bytes() const { return bytes_.load(); }

 private:
  std::shared_ptr<Fetch> fetch_;
  net::any_io_executor blocking_;
  std::atomic<std::uint64_t> bytes_{0};
};

Fetch::Fetch(Private, net::any_io_executor executor, const store::Digest& digest,
             std::uint64_t size)
    : digest_(digest), size_(size), strand_(net::make_strand(std::move(executor))), wake_(strand_) {
  wake_.expires_at(net::steady_timer::time_point::max());
}

net::awaitable<Result<std::uint64_t>> Fetch::WaitFor(std::uint64_t bytes, std::uint64_t from) {
  co_return co_await net::co_spawn(strand_, WaitOnStrand(bytes, from), net::use_awaitable);
}

net::awaitable<Result<std::uint64_t>> Fetch::WaitOnStrand(std::uint64_t bytes,
                                                         std::uint64_t from) {
  for (;;) {
    // Checked and waited for without suspending in between, on the strand
    // where Progress()/Finish() cancel the timer: no wake-up is lost.
    // Verified bytes stay good even if the commit fails afterwards: a reader's
    // descriptor keeps the staging file's inode.
    const bool verified = writer_->verified();
    if (done_ && result_ && !verified) co_return Fail(result_);
    // Until verified, everything but the last byte.
    const std::uint64_t on_disk =
        from == 0 ? writer_->contiguous_bytes() : writer_->WrittenFrom(from);
    const std::uint64_t have =
        done_ || verified ? size_ : std::min(on_disk, size_ > 0 ? size_ - 1 : 0);
    if (have >= bytes || done_) co_return have;
    ErrorCode ec;
    co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

net::awaitable<Result<void>> Fetch::WaitOpened() {
  co_return co_await net::co_spawn(
      strand_,
      [this]() -> net::awaitable<Result<void>> {
        for (;;) {
          if (opened_.load(std::memory_order_acquire)) co_return Result<void>();
          if (done_) co_return Fail(result_);
          ErrorCode ec;
          co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
      },
      net::use_awaitable);
}

net::awaitable<Result<void>> Fetch::WaitVerified() {
  co_return co_await net::co_spawn(
      strand_,
      [this]() -> net::awaitable<Result<void>> {
        for (;;) {
          if (writer_->verified()) co_return Result<void>();
          if (done_) co_return result_ ? Fail(result_) : Result<void>();
          ErrorCode ec;
          co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
      },
      net::use_awaitable);
}

net::awaitable<ErrorCode> Fetch::WaitDone() {
  co_return co_await net::co_spawn(
      strand_,
      [this]() -> net::awaitable<ErrorCode> {
        while (!done_) {
          ErrorCode ec;
          co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
        co_return result_;
      },
      net::use_awaitable);
}

net::awaitable<Result<CacheStatus>> Fetch::WaitForSupplier() {
  co_return co_await net::co_spawn(
      strand_,
      [this]() -> net::awaitable<Result<CacheStatus>> {
        for (;;) {
          if (const int supplier = supplier_.load(); supplier >= 0) {
            co_return static_cast<CacheStatus>(supplier);
          }
          if (done_ && result_) co_return Fail(result_);
          if (done_) co_return static_cast<CacheStatus>(trying_.load());
          ErrorCode ec;
          co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
      },
      net::use_awaitable);
}

void Fetch::Opened(const std::shared_ptr<Fetch>& fetch, std::unique_ptr<store::BlobWriter> writer) {
  fetch->writer_ = std::move(writer);
  fetch->opened_.store(true, std::memory_order_release);
  Progress(fetch);
}

void Fetch::Progress(const std::shared_ptr<Fetch>& fetch) {
  net::post(fetch->strand_, [fetch] { fetch->wake_.cancel(); });
}

void Fetch::Finish(const std::shared_ptr<Fetch>& fetch, ErrorCode result) {
  net::post(fetch->strand_, [fetch, result] {
    fetch->done_ = true;
    fetch->result_ = result;
    fetch->wake_.cancel();
  });
}

net::awaitable<Result<FetchCoordinator::Joined>> FetchCoordinator::JoinAs(FetchCoordinator* self,
                                                                       BlobRequest request) {
  std::shared_ptr<Fetch> fetch;
  bool starts = false;
  {
    std::lock_guard lock(self->mu_);
    if (auto it = self->running_.find(request.digest); it != self->running_.end()) {
      fetch = it->second;
    } else {
      starts = true;
      // In the map before the writer exists: requests that arrive while it
      // is being opened join this Fetch instead of racing to open another.
      fetch = std::make_shared<Fetch>(Fetch::Private{}, self->io_, request.digest, request.size);
      fetch->repo_ = request.repo;
      fetch->path_ = request.path;
      self->running_.emplace(request.digest, fetch);
    }
  }
  if (!starts) {
    // Joined one that another request started (or is starting).
    auto opened = co_await fetch->WaitOpened();
    if (!opened) co_return Fail(opened.error());
    co_return Joined{fetch, false};
  }
  // BeginWrite reserves space (perhaps evicting: LMDB commits, unlinks) and
  // creates the staging file: disk work, off the event loop. The store's
  // writer registry makes this the only writer of the digest.
  const store::Digest digest = request.digest;
  const std::uint64_t size = request.size;
  auto writer = co_await core::Offload(
      self->blocking_, [self, digest, size] { return self->store_.BeginWrite(digest, size); });
  if (!writer) {
    self->Forget(fetch);
    Fetch::Finish(fetch, writer.error());
    co_return Fail(writer.error());
  }
  Fetch::Opened(fetch, std::move(*writer));
  net::co_spawn(fetch->strand_, Run(self, fetch, std::move(request)), [digest](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error(log::Module::kProxy, "fetch_crashed", {{"digest", digest.Hex()}, {"error", ex.what()}});
    }
  });
  co_return Joined{fetch, true};
}

std::shared_ptr<Fetch> FetchCoordinator::Find(const store::Digest& digest) const {
  std::lock_guard lock(mu_);
  auto it = running_.find(digest);
  return it == running_.end() ? nullptr : it->second;
}

std::vector<FetchCoordinator::Progress> FetchCoordinator::Snapshot() const {
  std::vector<Progress> out;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    out.reserve(running_.size());
    for (const auto& [digest, fetch] : running_) {
      Progress p{.digest = digest,
                 .repo = fetch->repo_,
                 .path = fetch->path_,
                 .size = fetch->size_,
                 .bytes = fetch->opened_.load(std::memory_order_acquire)
                              ? fetch->writer_->contiguous_bytes()
                              : 0,
                 .source = static_cast<CacheStatus>(fetch->trying_.load()),
                 .via = {},
                 .readers = fetch->readers_.load(),
                 .seconds = std::chrono::duration<double>(now - fetch->started_).count()};
      {
        std::lock_guard via_lock(fetch->via_mu_);
        p.via = fetch->via_;
      }
      out.push_back(std::move(p));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Progress& a, const Progress& b) { return a.seconds > b.seconds; });
  return out;
}

std::size_t FetchCoordinator::running() const {
  std::lock_guard lock(mu_);
  return running_.size();
}

void FetchCoordinator::Forget(const std::shared_ptr<Fetch>& fetch) {
  std::lock_guard lock(mu_);
  if (auto it = running_.find(fetch->digest()); it != running_.end() && it->second == fetch) {
    running_.erase(it);
  }
}

net::awaitable<Result<void>> FetchCoordinator::FillFromSources(FetchCoordinator* self,
                                                               std::shared_ptr<Fetch> fetch,
                                                               const BlobRequest& request) {
  store::BlobWriter& writer = *fetch->writer_;
  ErrorCode last = make_error_code(Errc::kSourceUnavailable);
  for (BlobSource* source : self->sources_) {
    fetch->trying_.store(static_cast<int>(source->served_as()));
    Fetch::Sink sink(fetch, self->blocking_);
    sink.Via("");
    auto filled = co_await source->Fill(request, sink);
    if (filled) {
      // Verified and committed on one pool thread, so that joining the pool
      // (daemon shutdown) finishes a commit that has begun. Readers may send
      // the last byte once verified, without waiting for the disk.
      filled = co_await core::Offload(self->blocking_, [&writer, &fetch] {
        auto verified = writer.Verify();
        if (!verified) return verified;
        Fetch::Progress(fetch);
        return writer.Commit();
      });
    }
    if (self->metrics_ != nullptr) {
      self->metrics_->CountSourceBytes(source->name(), sink.bytes());
      if (source->served_as() == CacheStatus::kMiss) self->metrics_->CountUpstreamBytes(sink.bytes());
    }
    const bool unavailable = !filled && filled.error() == Errc::kSourceUnavailable;
    if (self->metrics_ != nullptr) {
      self->metrics_->CountSourceFetch(source->name(),
                                       filled ? "ok" : unavailable ? "unavailable" : "failed");
    }
    if (filled) co_return filled;
    if (unavailable) continue;
    last = filled.error();
    // Only bytes that were never verified are handed to the next source: a
    // writer that failed (digest mismatch, commit error) is final.
    if (writer.state() != store::BlobWriter::State::kWriting) co_return Fail(last);
    log::Warn(log::Module::kProxy, "source_failed",
              {{"digest", fetch->digest().Hex()},
               {"source", source->name()},
               {"bytes", sink.bytes()},
               {"error", last.message()}});
  }
  co_return Fail(last);
}

net::awaitable<void> FetchCoordinator::Run(FetchCoordinator* self, std::shared_ptr<Fetch> fetch,
                                           BlobRequest request) {
  const auto start = std::chrono::steady_clock::now();
  auto result = co_await FillFromSources(self, fetch, request);
  const ErrorCode ec = result ? ErrorCode() : result.error();
  if (ec) {
    // Deletes the staging file (readers keep their descriptors).
    co_await core::Offload(self->blocking_, [&fetch] { fetch->writer_->Abort(); });
    log::Warn(log::Module::kProxy, "fetch_failed",
              {{"digest", fetch->digest().Hex()}, {"error", ec.message()}});
  } else {
    log::Info(log::Module::kProxy, "fetch_done",
              {{"digest", fetch->digest().Hex()},
               {"bytes", fetch->size()},
               {"source", CacheStatusName(static_cast<CacheStatus>(fetch->trying_.load()))},
               {"ms", std::chrono::steady_clock::now() - start}});
  }
  // Out of the map first: from now on a new request finds the blob in the
  // store (or starts over after a failure).
  self->Forget(fetch);
  Fetch::Finish(fetch, ec);
}

}  // namespace hubcache::proxy
