#include "p2p/torrent.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <iterator>
#include <new>
#include <optional>
#include <system_error>
#include <utility>

// After <utility>: GCC 12 needs it before Boost 1.74's Asio (STYLE.md §0).
#include <libtorrent/bdecode.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/error_code.hpp>
#include <libtorrent/file_storage.hpp>
#include <libtorrent/sha1_hash.hpp>
#include <libtorrent/torrent_info.hpp>

#include "core/check.h"
#include "core/errc.h"
#include "core/unique_fd.h"
#include "p2p/errc.h"
#include "store/errc.h"

namespace hubcache::p2p {
namespace {

constexpr std::size_t kReadBlock = 1 << 20;

// What a peer's .torrent may cost us to parse: libtorrent's own defaults,
// which a canonical torrent (60 KB of hashes for 50 GB) stays far below.
const lt::load_torrent_limits kLimits{};

// Loads a .torrent without letting an exception out.
Result<std::unique_ptr<lt::torrent_info>> Load(std::string_view bytes) {
  if (bytes.empty() || bytes.size() > static_cast<std::size_t>(kLimits.max_buffer_size)) {
    return Fail(Errc::kInvalidTorrent);
  }
  try {
    lt::error_code ec;
    const lt::bdecode_node root =
        lt::bdecode({bytes.data(), static_cast<std::ptrdiff_t>(bytes.size())}, ec, nullptr,
                    kLimits.max_decode_depth, kLimits.max_decode_tokens);
    if (ec) return Fail(Errc::kInvalidTorrent);
    auto info = std::make_unique<lt::torrent_info>(root, ec);
    if (ec) return Fail(Errc::kInvalidTorrent);
    return info;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception&) {
    return Fail(Errc::kInvalidTorrent);
  }
}

}  // namespace

// --- PieceHasher ---

struct PieceHasher::Ctx {
  Ctx() : md(EVP_MD_CTX_new()) { Check(md != nullptr, "EVP_MD_CTX_new failed"); }
  ~Ctx() { EVP_MD_CTX_free(md); }
  void Init() {
    Check(EVP_DigestInit_ex(md, EVP_sha1(), nullptr) == 1, "EVP_DigestInit_ex failed");
  }
  EVP_MD_CTX* md;
};

PieceHasher::PieceHasher(std::uint64_t blob_size, Callback done)
    : size_(blob_size),
      piece_size_(PieceSize(blob_size)),
      done_(std::move(done)),
      ctx_(std::make_unique<Ctx>()) {
  hashes_.piece_size = piece_size_;
  ctx_->Init();
}

PieceHasher::~PieceHasher() = default;

void PieceHasher::Update(std::span<const std::uint8_t> bytes) {
  if (overflow_ || finished_) return;
  if (bytes.size() > size_ - seen_) {
    // More than announced: the store fails such a blob anyway; never
    // describe bytes that are not the blob.
    overflow_ = true;
    return;
  }
  while (!bytes.empty()) {
    const std::uint64_t piece_start = seen_ - in_piece_;
    const std::uint64_t piece_len = std::min<std::uint64_t>(piece_size_, size_ - piece_start);
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), piece_len - in_piece_));
    Check(EVP_DigestUpdate(ctx_->md, bytes.data(), n) == 1, "EVP_DigestUpdate failed");
    in_piece_ += static_cast<std::uint32_t>(n);
    seen_ += n;
    bytes = bytes.subspan(n);
    if (in_piece_ == piece_len) EndPiece();
  }
}

void PieceHasher::EndPiece() {
  Sha1& out = hashes_.sha1.emplace_back();
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(ctx_->md, out.data(), &len) == 1 && len == out.size(),
        "EVP_DigestFinal_ex failed");
  in_piece_ = 0;
  if (seen_ < size_) ctx_->Init();
}

void PieceHasher::Finish(bool verified) {
  if (finished_) return;
  finished_ = true;
  if (!verified || overflow_ || size_ == 0 || seen_ != size_) return;
  Check(hashes_.sha1.size() == PieceCount(size_), "PieceHasher: piece count off");
  done_(std::move(hashes_));
}

// --- HashBlobFile ---

Result<PieceHashes> HashBlobFile(const std::filesystem::path& path, std::uint64_t size,
                                 const std::atomic<bool>* stop) {
  if (size == 0) return Fail(core::Errc::kInvalidArgument);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Fail(core::ErrnoError(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Fail(core::ErrnoError(errno));
  if (static_cast<std::uint64_t>(st.st_size) != size) return Fail(store::Errc::kSizeMismatch);
  // A hint for readahead; a failure only costs speed.
  (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

  std::optional<PieceHashes> result;
  PieceHasher hasher(size, [&result](PieceHashes hashes) { result = std::move(hashes); });
  std::vector<std::uint8_t> buffer(kReadBlock);
  std::uint64_t offset = 0;
  while (offset < size) {
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) {
      return Fail(core::ErrnoError(ECANCELED));
    }
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kReadBlock, size - offset));
    const ssize_t n = ::pread(fd.get(), buffer.data(), want, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(core::ErrnoError(errno));
    }
    if (n == 0) return Fail(store::Errc::kSizeMismatch);  // truncated while we read
    hasher.Update({buffer.data(), static_cast<std::size_t>(n)});
    offset += static_cast<std::uint64_t>(n);
  }
  // Grown while we read? Then these hashes describe a file that is not the
  // blob of `size` bytes.
  for (;;) {
    std::uint8_t extra = 0;
    const ssize_t n = ::pread(fd.get(), &extra, 1, static_cast<off_t>(size));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(core::ErrnoError(errno));
    if (n > 0) return Fail(store::Errc::kSizeMismatch);
    break;
  }
  hasher.Finish(true);
  Check(result.has_value(), "HashBlobFile: the hasher did not finish");
  return std::move(*result);
}

// --- The .torrent ---

Result<std::string> MakeTorrent(const store::Digest& digest, std::uint64_t size,
                                const PieceHashes& pieces) {
  if (size == 0) return Fail(core::Errc::kInvalidArgument);
  if (pieces.piece_size != PieceSize(size) || pieces.sha1.size() != PieceCount(size)) {
    return Fail(Errc::kBadPieceHashes);
  }
  if (size > static_cast<std::uint64_t>(lt::file_storage::max_file_size)) {
    return Fail(core::Errc::kInvalidArgument);
  }
  try {
    // One file with a plain name and no flags or mtime, built by hand:
    // add_files() would stat the file and record attributes, and a name with
    // a '/' would make a multi-file torrent whose info.name is the folder.
    lt::file_storage files;
    lt::error_code ec;
    files.add_file(ec, digest.Hex(), static_cast<std::int64_t>(size));
    if (ec) return Fail(ec);
    // `files` must outlive `creator`, which keeps a reference to it.
    lt::create_torrent creator(files, static_cast<int>(pieces.piece_size),
                               lt::create_torrent::v1_only);
    // set_hash() does not check the index in release builds of libtorrent.
    if (static_cast<std::uint64_t>(creator.num_pieces()) != pieces.sha1.size()) {
      return Fail(Errc::kBadPieceHashes);
    }
    for (std::size_t i = 0; i < pieces.sha1.size(); ++i) {
      creator.set_hash(lt::piece_index_t(static_cast<int>(i)),
                       lt::sha1_hash(reinterpret_cast<const char*>(pieces.sha1[i].data())));
    }
    creator.set_creation_date(0);  // the constructor sets time(nullptr)
    std::string out;
    lt::bencode(std::back_inserter(out), creator.generate());
    return out;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const boost::system::system_error& e) {
    return Fail(e.code());
  } catch (const std::exception&) {
    return Fail(core::Errc::kInvalidArgument);
  }
}

Result<Sha1> InfoHash(std::string_view torrent_bytes) {
  auto info = Load(torrent_bytes);
  if (!info) return Fail(info.error());
  const lt::info_hash_t& hashes = (*info)->info_hashes();
  if (!hashes.has_v1()) return Fail(Errc::kInvalidTorrent);
  Sha1 out{};
  std::copy(hashes.v1.begin(), hashes.v1.end(), out.begin());
  return out;
}

std::string ToHex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

Result<void> CheckTorrentMatches(std::string_view torrent_bytes, const store::Digest& digest,
                                 std::uint64_t size) {
  auto loaded = Load(torrent_bytes);
  if (!loaded) return Fail(loaded.error());
  const lt::torrent_info& info = **loaded;
  if (!info.info_hashes().has_v1() || info.info_hashes().has_v2()) {
    return Fail(Errc::kTorrentMismatch);
  }
  const lt::file_storage& files = info.files();
  const lt::file_index_t first(0);
  const std::string hex = digest.Hex();
  // A multi-file torrent with one file has the path "<name>/<file>".
  if (files.num_files() != 1 || info.name() != hex || files.file_path(first) != hex) {
    return Fail(Errc::kTorrentMismatch);
  }
  if (size == 0 || static_cast<std::uint64_t>(files.file_size(first)) != size ||
      static_cast<std::uint64_t>(info.piece_length()) != PieceSize(size)) {
    return Fail(Errc::kTorrentMismatch);
  }
  // Same blob; now the same bytes as ours, given its piece hashes.
  PieceHashes pieces{.piece_size = PieceSize(size), .sha1 = {}};
  pieces.sha1.resize(static_cast<std::size_t>(info.num_pieces()));
  for (int i = 0; i < info.num_pieces(); ++i) {
    const lt::sha1_hash h = info.hash_for_piece(lt::piece_index_t(i));
    std::copy(h.begin(), h.end(), pieces.sha1[static_cast<std::size_t>(i)].begin());
  }
  const auto canonical = MakeTorrent(digest, size, pieces);
  if (!canonical || *canonical != torrent_bytes) return Fail(Errc::kNotCanonical);
  return {};
}

}  // namespace hubcache::p2p
