// Deterministic torrents: every node that holds a blob builds the same
// .torrent for it, byte for byte, so that all holders seed one info-hash and
// form one swarm without agreeing on anything but this file's rule
// (DESIGN.md "P2P", notes/P2P_NOTES.md §1).
//
// The canonical .torrent of a blob is BitTorrent v1 only, one file named by
// the digest's hex (info.name), of the blob's size, with the piece size of
// PieceSize() and nothing else: no creation date, creator, comment, trackers,
// web seeds, file attributes, mtime or private flag. Its piece hashes (SHA-1
// per piece) are computed by a PieceHasher in the same read pass that checks
// the blob's digest, or by HashBlobFile() for blobs already in the store.
//
// libtorrent stays inside the .cc files: this header is cheap to include.
//
// Thread safety: the free functions are pure or touch only their arguments
// and may run on any thread. A PieceHasher is used by one thread at a time
// (the store's HashTap rule). HashBlobFile() blocks on the disk for as long
// as reading the whole blob takes: run it on a blocking pool, never on an
// event loop.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/blob_events.h"
#include "store/digest.h"

namespace hubcache::p2p {

// The version of the rules below (piece size, torrent layout). Every input of
// the .torrent is pinned by them; changing any of them changes every blob's
// info-hash, so nodes on different rules form separate swarms for the same
// blob. Bump this when they change, and let nodes tell each other theirs.
inline constexpr int kTorrentRule = 1;

// Rule 1: 4 MiB pieces below 8 GiB, 16 MiB pieces from 8 GiB on. That keeps
// the piece list of a 50 GB blob near 3000 entries (60 KB of SHA-1) while
// small blobs still have several pieces to swarm on. Both sizes are powers of
// two, as libtorrent's creator wants.
inline constexpr std::uint32_t kSmallPieceSize = 4u << 20;
inline constexpr std::uint32_t kLargePieceSize = 16u << 20;
inline constexpr std::uint64_t kLargeBlobSize = std::uint64_t{8} << 30;

constexpr std::uint32_t PieceSize(std::uint64_t blob_size) {
  return blob_size < kLargeBlobSize ? kSmallPieceSize : kLargePieceSize;
}

// The number of pieces of a blob of `blob_size` bytes under the rule; the
// last one is shorter unless the size is a multiple of the piece size.
constexpr std::uint64_t PieceCount(std::uint64_t blob_size) {
  const std::uint64_t piece = PieceSize(blob_size);
  return (blob_size + piece - 1) / piece;
}

using Sha1 = std::array<std::uint8_t, 20>;

// The v1 piece hashes of one blob: sha1[i] covers bytes
// [i * piece_size, min((i + 1) * piece_size, size)).
struct PieceHashes {
  std::uint32_t piece_size = 0;
  std::vector<Sha1> sha1;
};

// A store::HashTap that computes the piece hashes of a blob from the bytes
// the store hashes anyway (OpenSSL EVP, SHA-NI where the CPU has it), so a
// download costs no second read to become seedable.
//
// `done` is called at most once, from Finish(true), on the thread that calls
// Finish, and only when exactly `blob_size` bytes were seen. It is never
// called for a blob that failed its digest, that was abandoned before every
// byte arrived, that received more bytes than announced, or for an empty blob
// (no torrent can describe zero bytes). `done` must stay callable until then.
class PieceHasher final : public store::HashTap {
 public:
  using Callback = std::function<void(PieceHashes)>;

  PieceHasher(std::uint64_t blob_size, Callback done);
  ~PieceHasher() override;
  PieceHasher(const PieceHasher&) = delete;
  PieceHasher& operator=(const PieceHasher&) = delete;

  // The next bytes of the blob, in order from offset 0, in chunks of any size
  // (a chunk may span pieces).
  void Update(std::span<const std::uint8_t> bytes) override;
  // Ends the pass; calls `done` if `verified` and the pass was complete.
  // Calls after the first do nothing.
  void Finish(bool verified) override;

 private:
  struct Ctx;
  // Closes the current piece's hash and appends it.
  void EndPiece();

  const std::uint64_t size_;
  const std::uint32_t piece_size_;
  Callback done_;
  std::unique_ptr<Ctx> ctx_;
  PieceHashes hashes_;
  std::uint64_t seen_ = 0;      // bytes passed to Update() so far
  std::uint32_t in_piece_ = 0;  // of which in the current piece
  bool overflow_ = false;       // more than size_ bytes arrived
  bool finished_ = false;
};

// The piece hashes of a blob that is already in the store (background
// backfill after an upgrade or for blobs committed before p2p was on). Reads
// `path` once with pread in 1 MiB blocks. The file is trusted: its digest was
// verified when it was committed, and it is not hashed again here.
//
// Blocks for the whole read. `stop`, if given, is polled before every block
// and must outlive the call.
// Errors: core::Errc::kInvalidArgument for `size` 0; store::Errc::kSizeMismatch
// if the file is shorter or longer than `size` (before or while reading);
// ECANCELED (system category) when *stop became true; any errno of open or
// pread (ENOENT when the blob was evicted meanwhile).
Result<PieceHashes> HashBlobFile(const std::filesystem::path& path, std::uint64_t size,
                                 const std::atomic<bool>* stop = nullptr);

// The canonical .torrent (bencoded bytes) of the blob `digest` of `size`
// bytes with the given piece hashes: the same bytes on every node for the
// same blob under kTorrentRule.
// Errors: core::Errc::kInvalidArgument for `size` 0; Errc::kBadPieceHashes if
// `pieces` has another piece size than PieceSize(size) or another count than
// PieceCount(size); libtorrent's error code if it refuses the input (a size
// beyond what it supports, a piece hash of all zeros). Never throws but
// std::bad_alloc.
Result<std::string> MakeTorrent(const store::Digest& digest, std::uint64_t size,
                                const PieceHashes& pieces);

// The v1 info-hash (SHA-1 of the bencoded info dictionary) of a .torrent.
// Errors: Errc::kInvalidTorrent if the bytes do not load as a .torrent or it
// has no v1 info-hash (a v2-only torrent).
Result<Sha1> InfoHash(std::string_view torrent_bytes);

// Lower-case hex of `bytes` (40 characters for an info-hash).
std::string ToHex(std::span<const std::uint8_t> bytes);

// Succeeds if `torrent_bytes` is the canonical .torrent of the blob `digest`
// of `size` bytes, i.e. exactly what MakeTorrent() builds from its own piece
// hashes. A node calls this on every .torrent a peer hands it, before adding
// it to libtorrent: a peer cannot make it fetch another blob, or announce to
// a tracker, web seed or DHT node the peer chose (keys outside the info
// dictionary must be absent too).
// Errors: Errc::kInvalidTorrent (not a .torrent); Errc::kTorrentMismatch if it
// is not v1-only, has more than one file, or its name, size or piece size is
// not that of this blob under the rule; Errc::kNotCanonical if it describes
// the blob but has any other key or encoding than the canonical form.
// The piece hashes themselves cannot be checked without the bytes: a wrong
// one shows as a failed piece, and the digest check catches the rest.
Result<void> CheckTorrentMatches(std::string_view torrent_bytes, const store::Digest& digest,
                                 std::uint64_t size);

}  // namespace hubcache::p2p
