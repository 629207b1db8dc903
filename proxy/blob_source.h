// BlobSource: somewhere the bytes of a blob can come from (DESIGN.md "Fetch
// coordination", "P2P").
//
// The FetchCoordinator (proxy/fetch.h) owns the store writer of a blob being
// fetched and asks its sources in order (on a cluster: the peers, then the
// Hub) to fill it. A source writes what it can through the BlobSink it is
// given; the coordinator, not the source, verifies the digest and commits.
// A source that cannot supply the blob says so (Errc::kSourceUnavailable)
// before writing anything; one that fails later returns its error, and the
// next source continues from the bytes already on disk (the writer keeps
// every byte written; the digest check at the end guards them all). So a
// source writes only bytes it has reason to trust: the Hub's, or a peer's
// that came with a piece hash or from an authenticated node.
//
// proxy/ defines this interface; the Hub download (HubSource,
// proxy/hub_source.h) is one implementation, and daemon/ adapts p2p/ to it:
// proxy/ and p2p/ never include each other.
//
// Executor: Fill runs on the fetch's strand (an event-loop strand); it must
// not block it (disk writes go through the sink, which offloads them).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "core/asio.h"
#include "core/result.h"
#include "core/secret.h"
#include "proxy/metrics.h"
#include "store/blob_store.h"
#include "store/index.h"

namespace hubcache::proxy {

// What a source may need to know of the blob and of where its bytes are.
struct BlobRequest {
  store::Digest digest;
  std::uint64_t size = 0;
  store::RepoId repo;           // the repo the requesting client asked for
  std::string path = {};        // the file it asked for (shown on the status page)
  std::string download_url;     // where the Hub said the bytes are (signed, expiring)
  std::string resolve_url;      // where to ask the Hub again when it expires
  // The requesting client's token: the Hub's proof that it may read `repo`
  // (a peer asked to fetch a restricted blob re-checks it with the Hub).
  Secret token = Secret();
};

// Where a source writes: the fetch's store writer, with the disk writes moved
// to the blocking pool and each write waking the readers that follow the
// download. Lives as long as the fetch; safe to call from several coroutines
// at once for any ranges (the first write of a byte wins).
class BlobSink {
 public:
  virtual ~BlobSink() = default;
  // Writes `data` at `offset` (the span must stay valid until resumed).
  // Errors: those of store::BlobWriter::WriteAt.
  virtual net::awaitable<Result<void>> WriteAt(std::uint64_t offset,
                                               std::span<const std::uint8_t> data) = 0;
  // The end of the run of bytes on disk that starts at `offset`, or
  // `offset` when that byte is missing: what a source may skip.
  virtual std::uint64_t WrittenFrom(std::uint64_t offset) const = 0;
  virtual std::uint64_t size() const = 0;
  // The source has the blob and its bytes are on the way (for the Hub: an
  // answer that passed its checks). Lets the fetch name its supplier (the
  // X-Cache of the answer's head) before the first byte is on disk. Optional:
  // the first WriteAt says the same.
  virtual void Supplying() = 0;
  // How the source gets the bytes at the moment ("swarm", "leader": a peer
  // source's two ways), shown on the status page. Optional.
  virtual void Via(std::string_view how) { (void)how; }
};

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // For logs and metrics: "hub", "peer".
  virtual std::string_view name() const = 0;
  // What X-Cache says of bytes that came from here (kMiss for the Hub,
  // kPeer for another node).
  virtual CacheStatus served_as() const = 0;
  // Writes the bytes of `request` that `sink` is missing. Success: every
  // byte is written (the coordinator then verifies and commits). Errors:
  // Errc::kSourceUnavailable when this source does not have the blob (nothing
  // written); anything else when it failed part way.
  virtual net::awaitable<Result<void>> Fill(const BlobRequest& request, BlobSink& sink) = 0;
};

}  // namespace hubcache::proxy
