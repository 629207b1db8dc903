#include "proxy/fetch.h"

#include "core/log.h"
#include "store/errc.h"

namespace hubcache::proxy {

struct Fetch::Private {};

Fetch::Fetch(Private, net::any_io_executor executor, std::unique_ptr<store::BlobWriter> writer)
    : strand_(net::make_strand(std::move(executor))), writer_(std::move(writer)), wake_(strand_) {
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
    const std::uint64_t size = writer_->expected_size();
    // Verified bytes stay good even if the commit fails afterwards: a reader's
    // descriptor keeps the staging file's inode.
    const bool verified = writer_->verified();
    if (done_ && result_ && !verified) co_return Fail(result_);
    // Until verified, everything but the last byte.
    const std::uint64_t on_disk =
        from == 0 ? writer_->contiguous_bytes() : writer_->WrittenFrom(from);
    const std::uint64_t have =
        done_ || verified ? size : std::min(on_disk, size > 0 ? size - 1 : 0);
    if (have >= bytes || done_) co_return have;
    ErrorCode ec;
    co_await wake_.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
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

Result<FetchCoordinator::Joined> FetchCoordinator::Join(const store::Digest& digest,
                                                        std::uint64_t size, BlobFetch how) {
  std::lock_guard lock(mu_);
  if (auto it = running_.find(digest); it != running_.end()) return Joined{it->second, false};
  // The store's writer registry makes this the only writer of `digest`.
  auto writer = store_.BeginWrite(digest, size);
  if (!writer) return Fail(writer.error());
  auto fetch = std::make_shared<Fetch>(Fetch::Private{}, io_, std::move(*writer));
  running_.emplace(digest, fetch);
  net::co_spawn(fetch->strand_, Run(this, fetch, std::move(how)), [digest](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::Error(log::Module::kProxy, "fetch_crashed", {{"digest", digest.Hex()}, {"error", ex.what()}});
    }
  });
  return Joined{fetch, true};
}

std::shared_ptr<Fetch> FetchCoordinator::Find(const store::Digest& digest) const {
  std::lock_guard lock(mu_);
  auto it = running_.find(digest);
  return it == running_.end() ? nullptr : it->second;
}

std::size_t FetchCoordinator::running() const {
  std::lock_guard lock(mu_);
  return running_.size();
}

net::awaitable<void> FetchCoordinator::Run(FetchCoordinator* self, std::shared_ptr<Fetch> fetch,
                                           BlobFetch how) {
  const auto start = std::chrono::steady_clock::now();
  // The progress callback keeps the Fetch alive for as long as it may run.
  // It is a named object, not a temporary in the co_await expression: GCC 12
  // destroys such temporaries twice (it cost this Fetch a reference).
  std::function<void()> on_progress = [fetch] { Fetch::Progress(fetch); };
  auto result = co_await FetchInto(self->client_, *fetch->writer_, self->blocking_, std::move(how),
                                   self->options_, on_progress, on_progress);
  const ErrorCode ec = result ? ErrorCode() : result.error();
  if (self->metrics_ != nullptr) {
    self->metrics_->CountUpstreamBytes(ec ? fetch->writer_->contiguous_bytes() : fetch->size());
  }
  if (ec) {
    log::Warn(log::Module::kProxy, "fetch_failed",
              {{"digest", fetch->digest().Hex()}, {"error", ec.message()}});
  } else {
    log::Info(log::Module::kProxy, "fetch_done",
              {{"digest", fetch->digest().Hex()},
               {"bytes", fetch->size()},
               {"ms", std::chrono::steady_clock::now() - start}});
  }
  // Out of the map first: from now on a new request finds the blob in the
  // store (or starts over after a failure).
  {
    std::lock_guard lock(self->mu_);
    self->running_.erase(fetch->digest());
  }

  Fetch::Finish(fetch, ec);
}

}  // namespace hubcache::proxy
