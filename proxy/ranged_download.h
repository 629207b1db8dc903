// DownloadRanges: fetches one large object with parallel Range requests.
//
// The object (size known beforehand, from the Hub's metadata) is split into
// chunks of upstream.chunk_bytes; up to upstream.connections workers each
// take the next chunk, GET it with `Range: bytes=a-b`, and write what arrives
// at its offset into the ChunkSink (the store's writer, which tolerates
// out-of-order writes). The first worker connects alone and the others
// start when it has its answer: the first bytes, which a client is waiting
// for, do not queue behind eight TLS handshakes. An object under two chunks is fetched with one plain
// GET. Bytes the sink already holds (job.held) are not asked for again: each
// chunk is fetched as the runs of bytes it is missing (found at 64 KiB
// granularity), so a download that continues after a swarm, whose pieces
// arrive in any order, re-fetches at most 64 KiB per held run.
// Within a chunk, the HubClient retries and resumes from the last byte
// received. A 403 or 410 from the download host means the signed URL expired:
// the job's `resolve` callback is asked for a fresh URL (once per expiry, all
// workers share it) and the chunk continues where it stopped. Every answer
// is checked: a 206 must carry exactly the requested range, and no chunk may
// deliver more or fewer bytes than asked.
//
// Executor: the workers run on a strand of the caller's executor; the sink
// is called from them one call at a time per worker (several workers may call
// it concurrently). Everything passed in must outlive the call.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "core/asio.h"
#include "core/result.h"
#include "proxy/hub_client.h"

namespace hubcache::proxy {

class ChunkSink {
 public:
  virtual ~ChunkSink() = default;
  // Writes `data` at `offset` of the object. Must be safe to call from
  // several coroutines at once for disjoint ranges.
  virtual net::awaitable<Result<void>> WriteAt(std::uint64_t offset,
                                               std::span<const std::uint8_t> data) = 0;
  // The first answer that will deliver bytes has arrived (its head passed
  // every check). Called once, before that answer's first WriteAt.
  virtual void Answered() {}
};

struct RangedJob {
  std::string url;          // where the bytes are (e.g. a signed CDN URL)
  std::uint64_t size = 0;   // total object size
  Secret token = Secret();  // sent only if `url` is on the token's origin (HubClient rule)
  // Returns a fresh download URL when the current one expired; may be empty
  // (then an expiry fails the download).
  std::function<net::awaitable<Result<std::string>>()> resolve = {};
  // The end of the run of bytes the sink already holds from `offset` (or
  // `offset`): a download that continues where another source stopped
  // skips them. Unset: nothing is held.
  std::function<std::uint64_t(std::uint64_t offset)> held = {};
};

struct RangedOptions {
  std::uint32_t connections = 8;
  std::uint64_t chunk_bytes = 8 * 1024 * 1024;
};

// Errors: the first failure of any chunk after its retries (the other
// workers stop taking chunks), Errc::kResumeFailed for answers that do not
// match the requested range, errors from the sink.
net::awaitable<Result<void>> DownloadRanges(HubClient& client, RangedJob job, ChunkSink& sink,
                                            RangedOptions options);

}  // namespace hubcache::proxy
