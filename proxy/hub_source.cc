#include "proxy/hub_source.h"

#include "proxy/errc.h"
#include "proxy/resolve.h"

namespace hubcache::proxy {
namespace {

// DownloadRanges writes through this into the fetch's sink.
class SinkAdapter final : public ChunkSink {
 public:
  explicit SinkAdapter(BlobSink& sink) : sink_(sink) {}
  net::awaitable<Result<void>> WriteAt(std::uint64_t offset,
                                       std::span<const std::uint8_t> data) override {
    co_return co_await sink_.WriteAt(offset, data);
  }
  void Answered() override { sink_.Supplying(); }

 private:
  BlobSink& sink_;
};

// A fresh download URL for `request`, checked to name the same content.
net::awaitable<Result<std::string>> Reresolve(HubClient& client, const BlobRequest& request) {
  auto again = co_await ResolveFile(client, request.resolve_url, request.token);
  if (!again) co_return Fail(again.error());
  if (again->status == 401 || again->status == 403) co_return Fail(Errc::kAccessRefused);
  if (again->status != 200 || again->etag != request.digest.Hex() ||
      again->size != request.size) {
    co_return Fail(Errc::kResumeFailed);
  }
  co_return again->download_url;
}

}  // namespace

net::awaitable<Result<void>> HubSource::Fill(const BlobRequest& request, BlobSink& sink) {
  std::string url = request.download_url;
  if (url.empty()) {
    if (request.resolve_url.empty()) co_return Fail(Errc::kSourceUnavailable);
    auto resolved = co_await Reresolve(client_, request);
    if (!resolved) co_return Fail(resolved.error());
    url = std::move(*resolved);
  }
  RangedJob job{.url = std::move(url), .size = request.size, .token = request.token};
  if (!request.resolve_url.empty()) {
    job.resolve = [this, &request]() { return Reresolve(client_, request); };
  }
  job.held = [&sink](std::uint64_t offset) { return sink.WrittenFrom(offset); };
  SinkAdapter adapter(sink);
  co_return co_await DownloadRanges(client_, std::move(job), adapter, options_);
}

}  // namespace hubcache::proxy
