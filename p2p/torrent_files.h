// TorrentFiles: this node's on-disk cache of .torrent files, one per blob,
// at <dir>/<first two hex digits>/<digest hex>.torrent (the daemon passes
// <cache_dir>/torrents). It keeps the canonical .torrent of every blob the
// node seeds or leads, so that it is built once (p2p/torrent.h) and served to
// peers as is.
//
// The bytes are stored as given: callers store only what MakeTorrent() built
// or CheckTorrentMatches() accepted. The files are a cache of derived data: a
// lost one is rebuilt from the blob (HashBlobFile), so nothing is fsynced, and
// a crash can leave a short file behind: check what Get() returns with
// CheckTorrentMatches() before handing it to libtorrent or to a peer.
//
// Thread safety: no state but the directory name; every call may run on any
// thread, concurrently with any other, also for the same digest (a reader
// sees a whole old file, a whole new one, or none). Every call blocks on the
// disk: callers on an event loop offload them to the blocking pool.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.h"
#include "store/digest.h"

namespace hubcache::p2p {

class TorrentFiles {
 public:
  // No I/O: the directory and its shards are created by the first Put().
  explicit TorrentFiles(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  // Where the .torrent of `digest` lives (whether or not it exists).
  std::filesystem::path PathOf(const store::Digest& digest) const;

  // Stores `bytes` as the .torrent of `digest`, replacing any previous one
  // atomically: written to a temporary file in the same folder, then renamed.
  // Errors: any errno of mkdir, open, write or rename; on failure the
  // previous file (if any) is untouched and no temporary file is left.
  Result<void> Put(const store::Digest& digest, std::string_view bytes);

  // The stored .torrent of `digest`.
  // Errors: core::Errc::kNotFound if there is none; core::Errc::kCorrupt if the
  // file is larger than any .torrent this node writes (16 MiB); any other
  // errno of open or read.
  Result<std::string> Get(const store::Digest& digest) const;

  // Whether a .torrent of `digest` is stored (an I/O error counts as no).
  bool Has(const store::Digest& digest) const;

  // Forgets the .torrent of `digest`. A missing file, or a failure to unlink
  // it, is ignored: a blob's canonical .torrent never changes, so a leftover
  // file is never wrong, only unused.
  void Remove(const store::Digest& digest);

 private:
  std::filesystem::path dir_;
};

}  // namespace hubcache::p2p
