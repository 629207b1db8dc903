#include "proxy/blob_fetch.h"

#include "core/log.h"
#include "core/offload.h"
#include "proxy/errc.h"
#include "proxy/resolve.h"

namespace hubcache::proxy {
namespace {

// Writes downloaded ranges into the store's writer on the blocking pool.
class WriterSink final : public ChunkSink {
 public:
  WriterSink(store::BlobWriter& writer, net::any_io_executor blocking,
             std::function<void()> on_progress)
      : writer_(writer), blocking_(std::move(blocking)), on_progress_(std::move(on_progress)) {}

  net::awaitable<Result<void>> WriteAt(std::uint64_t offset,
                                       std::span<const std::uint8_t> data) override {
    // The span points into the HTTP reader's buffer, which stays untouched
    // while this coroutine is suspended.
    co_return co_await core::Offload(blocking_, [this, offset, data] {
      auto written = writer_.WriteAt(offset, data);
      if (written && on_progress_) on_progress_();
      return written;
    });
  }

 private:
  store::BlobWriter& writer_;
  net::any_io_executor blocking_;
  std::function<void()> on_progress_;
};

}  // namespace

net::awaitable<Result<void>> FetchInto(HubClient& client, store::BlobWriter& writer,
                                       net::any_io_executor blocking, BlobFetch fetch,
                                       RangedOptions options, std::function<void()> on_progress,
                                       std::function<void()> on_verified) {
  const store::Digest digest = writer.digest();
  RangedJob job{.url = fetch.download_url, .size = writer.expected_size(), .token = fetch.token};
  if (!fetch.resolve_url.empty()) {
    job.resolve = [&client, &fetch, digest]() -> net::awaitable<Result<std::string>> {
      auto again = co_await ResolveFile(client, fetch.resolve_url, fetch.token);
      if (!again) co_return Fail(again.error());
      // The same path must still name the same content.
      if (again->status != 200 || again->etag != digest.Hex()) co_return Fail(Errc::kResumeFailed);
      co_return again->download_url;
    };
  }
  WriterSink sink(writer, blocking, std::move(on_progress));
  auto downloaded = co_await DownloadRanges(client, std::move(job), sink, options);
  if (!downloaded) {
    writer.Abort();
    co_return Fail(downloaded.error());
  }
  auto committed = co_await core::Offload(blocking, [&writer, &on_verified] {
    auto verified = writer.Verify();
    if (!verified) return verified;
    if (on_verified) on_verified();
    return writer.Commit();
  });
  if (!committed) {
    writer.Abort();
    co_return Fail(committed.error());
  }
  co_return Result<void>();
}

}  // namespace hubcache::proxy
