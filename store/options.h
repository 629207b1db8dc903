// Options of the store: where blobs live and how much space they may take.
// The [store] section of the configuration fills this struct (config/).
#pragma once

#include <cstdint>
#include <string>

namespace hubcache::store {

class Disk;

struct Options {
  // Root of the cache: blobs/, staging/, index/ and the lock file live here.
  // Created at startup if missing. The config layer fills in the default
  // ($CACHE_DIRECTORY under systemd, else $XDG_CACHE_HOME/hubcache, else
  // ~/.cache/hubcache).
  std::string cache_dir;
  // Upper bound on the bytes of all blobs; 0 means no limit beyond
  // min_free_percent. Eviction drops least-recently-used unpinned blobs.
  std::uint64_t max_bytes = 0;
  // Eviction keeps at least this percentage of the filesystem free (0-100).
  double min_free_percent = 10.0;
  // The most the LMDB index may grow to: address space mapped, not disk used
  // (the file grows with what it holds: ~1 KB per cached file). When it is
  // full, writes to it fail (logged; blobs are then served without being
  // stored) until it is reopened with more.
  std::uint64_t index_max_bytes = std::uint64_t{64} << 30;
  // The file operations of blobs and staging files (store/disk.h); null
  // means the real filesystem. Tests pass a fault-injecting one. Not owned;
  // must outlive the store.
  Disk* disk = nullptr;
};

}  // namespace hubcache::store
