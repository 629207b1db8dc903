// HubSource: the Hub as a BlobSource (proxy/blob_source.h), the upstream half
// of a cache miss. Downloads a file's bytes from where the Hub said they are
// (parallel ranges for large files, see ranged_download.h), skipping the
// bytes the writer already holds, so that it continues where another source
// stopped. When the request carries no download URL yet (the metadata came
// from the cache), it asks the Hub for one first with the client's token.
// Expired signed URLs are asked for again mid-download; the same path must
// still name the same content.
//
// Executor: the caller's. `client` must outlive the source.
#pragma once

#include "proxy/blob_source.h"
#include "proxy/hub_client.h"
#include "proxy/ranged_download.h"

namespace hubcache::proxy {

class HubSource final : public BlobSource {
 public:
  HubSource(HubClient& client, RangedOptions options) : client_(client), options_(options) {}

  std::string_view name() const override { return "hub"; }
  CacheStatus served_as() const override { return CacheStatus::kMiss; }
  // Errors: download errors (see DownloadRanges), store errors from writing,
  // kResumeFailed when a re-resolve points at other content;
  // kSourceUnavailable when there is neither a download URL nor a resolve
  // URL to ask.
  net::awaitable<Result<void>> Fill(const BlobRequest& request, BlobSink& sink) override;

 private:
  HubClient& client_;
  const RangedOptions options_;
};

}  // namespace hubcache::proxy
