// FetchInto: the upstream half of a cache miss. Downloads a file's bytes
// (parallel ranges for large files, see ranged_download.h) into a store
// BlobWriter and commits it, so the blob enters the store only after its
// size and digest check out.
//
// The writer is created by the caller (the fetch coordinator), so that
// readers can follow its contiguous prefix while the download runs. Disk
// writes and the commit (hashing, fsync, LMDB) run on `blocking`, a thread
// pool, never on the event loop.
//
// Executor: the caller's. `client`, `writer` and the pool must outlive the
// call.
#pragma once

#include <functional>
#include <string>

#include "core/asio.h"
#include "core/result.h"
#include "core/secret.h"
#include "proxy/hub_client.h"
#include "proxy/ranged_download.h"
#include "store/blob_store.h"

namespace hubcache::proxy {

struct BlobFetch {
  std::string download_url;  // from ResolveFile()
  std::string resolve_url;   // asked again when the download URL expires
  Secret token = Secret();   // for the Hub (never sent to the CDN)
};

// Errors: download errors (see DownloadRanges), store errors from writing,
// store::Errc::kDigestMismatch when the bytes do not hash to the writer's
// digest (nothing is stored), kResumeFailed when a re-resolve points at other
// content. On any error the writer is aborted.
// `on_progress`, if set, is called (from the blocking pool) after each write
// that reached the disk, so that readers following the file can be woken.
// `on_verified`, if set, is called (from the blocking pool) once the bytes
// are complete and hash to the digest, before the commit makes them durable:
// readers may send the last byte then, without waiting for the disk. The
// commit runs right after on the same pool thread, so joining the pool
// (daemon shutdown) finishes it.
net::awaitable<Result<void>> FetchInto(HubClient& client, store::BlobWriter& writer,
                                       net::any_io_executor blocking, BlobFetch fetch,
                                       RangedOptions options,
                                       std::function<void()> on_progress = {},
                                       std::function<void()> on_verified = {});

}  // namespace hubcache::proxy
