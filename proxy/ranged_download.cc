#include "proxy/ranged_download.h"

#include <charconv>

#include "core/log.h"
#include "proxy/byte_ranges.h"
#include "proxy/errc.h"

namespace hubcache::proxy {
namespace {

constexpr int kMaxUrlRefreshes = 5;
// Granularity at which a chunk is searched for bytes the sink already holds:
// a held run found this much late costs at most this much downloaded twice
// (the first write of a byte wins, so it costs bytes, not correctness).
constexpr std::uint64_t kHeldProbe = 64 * 1024;

// State shared by the workers of one download. Touched only on the strand.
struct Shared {
  Shared(net::strand<net::any_io_executor> strand, RangedJob job, RangedOptions options)
      : strand(strand), job(std::move(job)), options(options), done(strand), resolved(strand), first_answer(strand) {}

  net::strand<net::any_io_executor> strand;
  RangedJob job;
  RangedOptions options;
  std::uint64_t chunks = 0;
  std::uint64_t next_chunk = 0;
  bool whole = false;          // one plain GET instead of ranges
  std::uint64_t url_generation = 0;
  bool resolving = false;
  int refreshes = 0;
  ErrorCode failure;
  int running = 0;
  net::steady_timer done;      // cancelled when the last worker ends
  net::steady_timer resolved;  // cancelled when a URL refresh ends
  // The first worker connects alone; the others start once it has an answer
  // (or has ended). Eight TLS handshakes at once delay every first byte, and
  // the first byte is what the waiting client needs.
  bool started = false;
  net::steady_timer first_answer;  // cancelled when `started` becomes true

  void Start() {
    if (started) return;
    started = true;
    first_answer.cancel();
  }
  ChunkSink* sink = nullptr;
  bool answered = false;
  // A worker's answer passed its checks: the download is under way.
  void Answered() {
    Start();
    if (answered) return;
    answered = true;
    sink->Answered();
  }
};

// Receives one chunk's answer and writes it at its offset.
class ChunkBody final : public BodySink {
 public:
  ChunkBody(ChunkSink& sink, Shared& shared, std::uint64_t first, std::uint64_t last,
            std::uint64_t& written)
      : sink_(sink), shared_(shared), first_(first), last_(last), written_(written) {}

  net::awaitable<Result<void>> OnHead(const ResponseHead& head) override {
    if (head.status == 403 || head.status == 410) {
      expired_ = true;
      co_return Fail(Errc::kUrlExpired);
    }
    // Asked for identity: encoded bytes are not the blob's (a CDN that
    // compresses anyway); they would only fail the digest later.
    if (const std::string encoding = head.Header("content-encoding");
        !encoding.empty() && !beast::iequals(encoding, "identity")) {
      log::Warn(log::Module::kProxy, "download_encoded", {{"content_encoding", encoding.substr(0, 40)}});
      co_return Fail(Errc::kUnexpectedStatus);
    }
    if (shared_.whole && first_ + written_ == 0) {
      if (head.status != 200) co_return Unexpected(head);
      shared_.Answered();
      co_return Result<void>();
    }
    if (head.status != 206) co_return Unexpected(head);
    shared_.Start();
    auto bounds = ParseContentRange(head.Header("content-range"));
    if (!bounds || bounds->span.first != first_ + written_ || bounds->span.last != last_) {
      log::Warn(log::Module::kProxy, "download_range_mismatch",
                {{"asked_first", first_ + written_},
                 {"asked_last", last_},
                 {"content_range", head.Header("content-range")}});
      co_return Fail(Errc::kResumeFailed);
    }
    shared_.Answered();
    co_return Result<void>();
  }

  net::awaitable<Result<void>> OnData(std::span<const std::uint8_t> data) override {
    if (written_ + data.size() > last_ - first_ + 1) co_return Fail(Errc::kResumeFailed);
    auto r = co_await sink_.WriteAt(first_ + written_, data);
    if (r) written_ += data.size();
    co_return r;
  }

  bool expired() const { return expired_; }

 private:
  Result<void> Unexpected(const ResponseHead& head) {
    log::Warn(log::Module::kProxy, "download_unexpected_status", {{"status", head.status}});
    return Fail(Errc::kUnexpectedStatus);
  }

  ChunkSink& sink_;
  Shared& shared_;
  const std::uint64_t first_;
  const std::uint64_t last_;
  std::uint64_t& written_;
  bool expired_ = false;
};

// Gets a fresh URL, or waits for the worker that is already getting one.
net::awaitable<Result<void>> RefreshUrl(Shared& shared, std::uint64_t seen_generation) {
  if (shared.url_generation != seen_generation) co_return Result<void>();  // done already
  if (shared.resolving) {
    ErrorCode ec;
    co_await shared.resolved.async_wait(net::redirect_error(net::use_awaitable, ec));
    co_return shared.url_generation != seen_generation ? Result<void>()
                                                       : Result<void>(Fail(Errc::kUrlExpired));
  }
  if (!shared.job.resolve || ++shared.refreshes > kMaxUrlRefreshes) co_return Fail(Errc::kUrlExpired);
  shared.resolving = true;
  shared.resolved.expires_at(net::steady_timer::time_point::max());
  auto fresh = co_await shared.job.resolve();
  shared.resolving = false;
  shared.resolved.cancel();
  if (!fresh) co_return Fail(fresh.error());
  log::Info(log::Module::kProxy, "download_url_refreshed", {{"refresh", shared.refreshes}});
  shared.job.url = std::move(*fresh);
  ++shared.url_generation;
  co_return Result<void>();
}

net::awaitable<void> Worker(HubClient& client, ChunkSink& sink, Shared& shared, bool lead) {
  if (!lead && !shared.started) {
    ErrorCode ec;
    co_await shared.first_answer.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  while (!shared.failure && shared.next_chunk < shared.chunks) {
    const std::uint64_t index = shared.next_chunk++;
    const std::uint64_t chunk_first = index * shared.options.chunk_bytes;
    const std::uint64_t chunk_last =
        std::min(chunk_first + shared.options.chunk_bytes, shared.job.size) - 1;
    // The chunk's runs of bytes the sink is missing, one request each: bytes
    // another source wrote (a swarm writes pieces in any order) are not asked
    // for again.
    std::uint64_t pos = chunk_first;
    while (pos <= chunk_last && !shared.failure) {
      if (shared.job.held) {
        pos = std::max(pos, shared.job.held(pos));
        if (pos > chunk_last) break;
      }
      const std::uint64_t first = pos;
      std::uint64_t last = chunk_last;
      if (shared.job.held && !shared.whole) {
        for (std::uint64_t probe = first + kHeldProbe; probe <= chunk_last; probe += kHeldProbe) {
          if (shared.job.held(probe) > probe) {
            last = probe - 1;
            break;
          }
        }
      }
      std::uint64_t written = 0;
      for (;;) {
        OutRequest request{.url = shared.job.url, .token = shared.job.token};
        // The blob's own bytes, never a compressed form of them.
        request.headers.emplace_back("Accept-Encoding", "identity");
        if (!shared.whole || first + written > 0) {
          request.headers.emplace_back(
              "Range", "bytes=" + std::to_string(first + written) + "-" + std::to_string(last));
        }
        const std::uint64_t generation = shared.url_generation;
        ChunkBody body(sink, shared, first, last, written);
        auto sent = co_await client.Send(std::move(request), body);
        if (sent && written == last - first + 1) break;
        if (!sent && body.expired()) {
          if (auto refreshed = co_await RefreshUrl(shared, generation); refreshed) continue;
        }
        if (!shared.failure) shared.failure = sent ? ErrorCode(Errc::kResumeFailed) : sent.error();
        break;
      }
      pos = last + 1;
    }
  }
  if (lead) shared.Start();
  if (--shared.running == 0) shared.done.cancel();
}

net::awaitable<Result<void>> Coordinate(HubClient& client, ChunkSink& sink, Shared& shared) {
  const std::uint64_t chunk = std::max<std::uint64_t>(shared.options.chunk_bytes, 1);
  shared.options.chunk_bytes = chunk;
  shared.whole = shared.job.size < 2 * chunk;
  if (shared.whole) shared.options.chunk_bytes = shared.job.size;
  shared.chunks = shared.whole ? 1 : (shared.job.size + chunk - 1) / chunk;
  const std::uint64_t workers =
      std::min<std::uint64_t>(std::max<std::uint32_t>(shared.options.connections, 1), shared.chunks);
  shared.done.expires_at(net::steady_timer::time_point::max());
  shared.first_answer.expires_at(net::steady_timer::time_point::max());
  shared.running = static_cast<int>(workers);
  for (std::uint64_t i = 0; i < workers; ++i) {
    const bool lead = i == 0;
    net::co_spawn(shared.strand, Worker(client, sink, shared, lead), [&shared, lead](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::Error(log::Module::kProxy, "download_worker_failed", {{"error", ex.what()}});
      }
      if (!shared.failure) shared.failure = make_error_code(Errc::kUnexpectedStatus);
      if (lead) shared.Start();
      if (--shared.running == 0) shared.done.cancel();
    });
  }
  // Workers run only when this coroutine yields (same strand), so `running`
  // cannot reach zero between this check and the wait.
  if (shared.running > 0) {
    ErrorCode ec;
    co_await shared.done.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
  if (shared.failure) co_return Fail(shared.failure);
  co_return Result<void>();
}

}  // namespace

net::awaitable<Result<void>> DownloadRanges(HubClient& client, RangedJob job, ChunkSink& sink,
                                            RangedOptions options) {
  if (job.size == 0) co_return Result<void>();
  auto strand = net::make_strand(co_await net::this_coro::executor);
  Shared shared(strand, std::move(job), options);
  shared.sink = &sink;
  co_return co_await net::co_spawn(strand, Coordinate(client, sink, shared), net::use_awaitable);
}

}  // namespace hubcache::proxy
