#include "p2p/torrent.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

// After <utility>: GCC 12 needs it before Boost 1.74's Asio (STYLE.md §0).
#include <libtorrent/bdecode.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/entry.hpp>
#include <libtorrent/file_storage.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/torrent_info.hpp>

#include "core/errc.h"
#include "p2p/errc.h"
#include "p2p/torrent_files.h"
#include "store/blob_store.h"
#include "store/errc.h"
#include "store/options.h"
#include "tests/support/bytes.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace hubcache::p2p {
namespace {

namespace fs = std::filesystem;
using store::Digest;
using store::DigestKind;
using testing::AsBytes;
using testing::Content;

constexpr std::uint64_t kMiB = 1 << 20;

Digest Sha256Of(const std::string& content) {
  return store::HashBytes(DigestKind::kSha256, content);
}

// Feeds `content` to `hasher` in uneven chunks: tiny ones, ones that end
// exactly on a piece boundary, and large ones that span several pieces.
void FeedUnevenly(PieceHasher& hasher, const std::string& content, unsigned seed) {
  std::mt19937 rng(seed);
  const std::size_t sizes[] = {1, 7, 4096 + 3, kMiB - 1, 3 * kMiB + 17, 9 * kMiB};
  std::size_t at = 0;
  while (at < content.size()) {
    std::size_t n = sizes[rng() % std::size(sizes)];
    // Now and then stop exactly at the end of the current piece.
    const std::size_t to_boundary = kSmallPieceSize - at % kSmallPieceSize;
    if (rng() % 4 == 0) n = to_boundary;
    n = std::min(n, content.size() - at);
    hasher.Update(AsBytes(content, at, n));
    at += n;
  }
}

// Piece hashes computed by libtorrent's own SHA-1, piece by piece.
std::vector<Sha1> ReferencePieceHashes(const std::string& content, std::uint32_t piece_size) {
  std::vector<Sha1> out;
  for (std::size_t at = 0; at < content.size(); at += piece_size) {
    const std::size_t n = std::min<std::size_t>(piece_size, content.size() - at);
    const lt::sha1_hash h = lt::hasher(content.data() + at, static_cast<int>(n)).final();
    Sha1& s = out.emplace_back();
    std::copy(h.begin(), h.end(), s.begin());
  }
  return out;
}

// What libtorrent builds when it hashes the file itself with set_piece_hashes
// (same file list, piece size and flags), bencoded. `dir` holds the file
// named by the digest's hex.
std::string LibtorrentTorrent(const fs::path& dir, const Digest& digest, std::uint64_t size) {
  lt::file_storage files;
  files.add_file(digest.Hex(), static_cast<std::int64_t>(size));
  lt::create_torrent creator(files, static_cast<int>(PieceSize(size)), lt::create_torrent::v1_only);
  lt::error_code ec;
  lt::set_piece_hashes(creator, dir.string(), ec);
  EXPECT_FALSE(ec) << ec.message();
  creator.set_creation_date(0);
  std::string out;
  lt::bencode(std::back_inserter(out), creator.generate());
  return out;
}

std::set<std::string> Keys(const lt::bdecode_node& dict) {
  std::set<std::string> keys;
  for (int i = 0; i < dict.dict_size(); ++i) keys.emplace(dict.dict_at(i).first);
  return keys;
}

// A v1 torrent built with libtorrent from arbitrary (non-zero) hashes: for
// torrents that are deliberately not canonical.
std::string ForeignTorrent(lt::file_storage& files, int piece_size,
                           lt::create_flags_t flags = lt::create_torrent::v1_only) {
  lt::create_torrent creator(files, piece_size, flags);
  for (int i = 0; i < creator.num_pieces(); ++i) {
    lt::sha1_hash h;
    std::fill(h.begin(), h.end(), static_cast<std::uint8_t>(i + 1));
    creator.set_hash(lt::piece_index_t(i), h);
  }
  creator.set_creation_date(0);
  std::string out;
  lt::bencode(std::back_inserter(out), creator.generate());
  return out;
}

void WriteBlobFile(const fs::path& path, const std::string& content, fs::perms mode,
                   fs::file_time_type mtime) {
  testing::WriteFile(path, content);
  fs::permissions(path, mode);
  fs::last_write_time(path, mtime);
}

TEST(PieceSizeTest, RuleOne) {
  EXPECT_EQ(kTorrentRule, 1);
  EXPECT_EQ(PieceSize(1), 4 * kMiB);
  EXPECT_EQ(PieceSize(8 * 1024 * kMiB - 1), 4 * kMiB);
  EXPECT_EQ(PieceSize(8 * 1024 * kMiB), 16 * kMiB);
  EXPECT_EQ(PieceSize(50'000'000'000), 16 * kMiB);
  EXPECT_EQ(PieceCount(1), 1u);
  EXPECT_EQ(PieceCount(4 * kMiB), 1u);
  EXPECT_EQ(PieceCount(4 * kMiB + 1), 2u);
  EXPECT_EQ(PieceCount(8 * 1024 * kMiB - 1), 2048u);
  EXPECT_EQ(PieceCount(8 * 1024 * kMiB), 512u);
  EXPECT_EQ(PieceCount(50'000'000'000), 2981u);
}

// --- Two nodes, one blob, one torrent ---

class TwoNodesTest : public ::testing::TestWithParam<std::uint64_t> {
 protected:
  testing::TempDir temp_{"hubcache-p2p-torrent-test"};
};

TEST_P(TwoNodesTest, BuildByteIdenticalTorrentsThatLibtorrentAgreesWith) {
  const std::uint64_t size = GetParam();
  const std::string content = Content(size, static_cast<unsigned>(size));
  const Digest digest = Sha256Of(content);
  const std::string hex = digest.Hex();

  // Node A hashes the bytes as its store writes them; its copy is read-only,
  // a year old. Node B backfills from its file: executable, written now.
  const fs::path path_a = temp_ / "a" / "blobs" / hex.substr(0, 2) / hex;
  const fs::path path_b = temp_ / "b" / "elsewhere" / hex;
  WriteBlobFile(path_a, content, fs::perms::owner_read | fs::perms::group_read,
                fs::file_time_type::clock::now() - std::chrono::hours(24 * 365));
  WriteBlobFile(path_b, content, fs::perms::owner_all | fs::perms::group_exec,
                fs::file_time_type::clock::now());

  std::optional<PieceHashes> from_tap;
  PieceHasher tap(size, [&](PieceHashes h) { from_tap = std::move(h); });
  FeedUnevenly(tap, content, 42);
  tap.Finish(true);
  ASSERT_TRUE(from_tap);
  auto from_file = HashBlobFile(path_b, size);
  ASSERT_TRUE(from_file) << from_file.error().message();

  const std::vector<Sha1> reference = ReferencePieceHashes(content, PieceSize(size));
  EXPECT_EQ(from_tap->piece_size, PieceSize(size));
  EXPECT_EQ(from_file->piece_size, PieceSize(size));
  EXPECT_EQ(from_tap->sha1, reference);
  EXPECT_EQ(from_file->sha1, reference);

  auto torrent_a = MakeTorrent(digest, size, *from_tap);
  auto torrent_b = MakeTorrent(digest, size, *from_file);
  ASSERT_TRUE(torrent_a) << torrent_a.error().message();
  ASSERT_TRUE(torrent_b) << torrent_b.error().message();
  EXPECT_TRUE(*torrent_a == *torrent_b);
  auto hash_a = InfoHash(*torrent_a);
  auto hash_b = InfoHash(*torrent_b);
  ASSERT_TRUE(hash_a);
  ASSERT_TRUE(hash_b);
  EXPECT_EQ(ToHex(*hash_a), ToHex(*hash_b));
  EXPECT_EQ(ToHex(*hash_a).size(), 40u);

  // libtorrent hashing the file itself, from either directory, agrees.
  for (const fs::path& dir : {path_a.parent_path(), path_b.parent_path()}) {
    const std::string theirs = LibtorrentTorrent(dir, digest, size);
    auto their_hash = InfoHash(theirs);
    ASSERT_TRUE(their_hash);
    EXPECT_EQ(ToHex(*their_hash), ToHex(*hash_a));
    EXPECT_TRUE(theirs == *torrent_a);
  }
  EXPECT_TRUE(CheckTorrentMatches(*torrent_a, digest, size));
}

TEST_P(TwoNodesTest, TorrentHasOnlyTheCanonicalKeys) {
  const std::uint64_t size = GetParam();
  const std::string content = Content(size, static_cast<unsigned>(size) + 1);
  const Digest digest = Sha256Of(content);
  PieceHashes pieces{.piece_size = PieceSize(size),
                     .sha1 = ReferencePieceHashes(content, PieceSize(size))};
  auto torrent = MakeTorrent(digest, size, pieces);
  ASSERT_TRUE(torrent) << torrent.error().message();

  lt::error_code ec;
  const lt::bdecode_node root =
      lt::bdecode({torrent->data(), static_cast<std::ptrdiff_t>(torrent->size())}, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(root.type(), lt::bdecode_node::dict_t);
  const std::set<std::string> top = Keys(root);
  for (const char* key : {"creation date", "created by", "comment", "announce", "announce-list",
                          "url-list", "httpseeds", "nodes", "piece layers"}) {
    EXPECT_EQ(top.count(key), 0u) << key;
  }
  EXPECT_EQ(top, std::set<std::string>{"info"});

  const lt::bdecode_node info = root.dict_find_dict("info");
  ASSERT_TRUE(info);
  EXPECT_EQ(Keys(info), (std::set<std::string>{"length", "name", "piece length", "pieces"}));
  EXPECT_EQ(info.dict_find_string_value("name"), digest.Hex());
  EXPECT_EQ(info.dict_find_int_value("length"), static_cast<std::int64_t>(size));
  EXPECT_EQ(info.dict_find_int_value("piece length"), PieceSize(size));
  std::string pieces_string;
  for (const Sha1& h : pieces.sha1) pieces_string.append(h.begin(), h.end());
  EXPECT_TRUE(info.dict_find_string_value("pieces") == pieces_string);

  // And libtorrent loads it as one file of that size.
  lt::torrent_info loaded(root, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(loaded.num_files(), 1);
  EXPECT_EQ(loaded.name(), digest.Hex());
  EXPECT_EQ(loaded.files().file_path(lt::file_index_t(0)), digest.Hex());
  EXPECT_EQ(loaded.total_size(), static_cast<std::int64_t>(size));
  EXPECT_EQ(loaded.piece_length(), static_cast<int>(PieceSize(size)));
  EXPECT_EQ(static_cast<std::uint64_t>(loaded.num_pieces()), PieceCount(size));
  EXPECT_FALSE(loaded.priv());
  EXPECT_TRUE(loaded.info_hashes().has_v1());
  EXPECT_FALSE(loaded.info_hashes().has_v2());
}

// 1 byte; exactly one piece; one piece and a byte; several pieces with a
// short last one; several whole pieces.
INSTANTIATE_TEST_SUITE_P(Sizes, TwoNodesTest,
                         ::testing::Values(1, 4 * kMiB, 4 * kMiB + 1, 10 * kMiB + 12345, 12 * kMiB),
                         [](const ::testing::TestParamInfo<std::uint64_t>& param) {
                           return "Bytes" + std::to_string(param.param);
                         });

// A large blob's torrent can be built from (made-up) hashes without data.
TEST(MakeTorrentTest, LargeBlobsUseSixteenMiBPieces) {
  const std::uint64_t size = 8 * 1024 * kMiB + 1;
  const Digest digest = Sha256Of("large");
  PieceHashes pieces{.piece_size = PieceSize(size), .sha1 = {}};
  pieces.sha1.resize(PieceCount(size));
  for (std::size_t i = 0; i < pieces.sha1.size(); ++i)
    pieces.sha1[i].fill(static_cast<std::uint8_t>(i | 1));
  auto torrent = MakeTorrent(digest, size, pieces);
  ASSERT_TRUE(torrent) << torrent.error().message();
  lt::error_code ec;
  lt::torrent_info loaded(torrent->data(), static_cast<int>(torrent->size()), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(loaded.piece_length(), static_cast<int>(16 * kMiB));
  EXPECT_EQ(loaded.num_pieces(), 513);
  EXPECT_TRUE(CheckTorrentMatches(*torrent, digest, size));
}

TEST(MakeTorrentTest, RefusesSizeZeroAndHashesThatDoNotFit) {
  const Digest digest = Sha256Of("x");
  const std::uint64_t size = 4 * kMiB + 1;
  PieceHashes two{.piece_size = PieceSize(size), .sha1 = std::vector<Sha1>(2, Sha1{1})};
  EXPECT_TRUE(MakeTorrent(digest, size, two));

  EXPECT_EQ(MakeTorrent(digest, 0, PieceHashes{PieceSize(0), {}}).error(),
            make_error_code(core::Errc::kInvalidArgument));
  PieceHashes one = two;
  one.sha1.pop_back();
  EXPECT_EQ(MakeTorrent(digest, size, one).error(), make_error_code(Errc::kBadPieceHashes));
  PieceHashes three = two;
  three.sha1.push_back(Sha1{1});
  EXPECT_EQ(MakeTorrent(digest, size, three).error(), make_error_code(Errc::kBadPieceHashes));
  PieceHashes other_size = two;
  other_size.piece_size = 2 * kMiB;
  EXPECT_EQ(MakeTorrent(digest, size, other_size).error(), make_error_code(Errc::kBadPieceHashes));
  // libtorrent takes an all-zero hash for "not set" and throws from
  // generate(): an error here, not an exception.
  PieceHashes zero = two;
  zero.sha1[1] = Sha1{};
  auto made = MakeTorrent(digest, size, zero);
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().category(), Category());
}

// --- PieceHasher ---

TEST(PieceHasherTest, CallsBackOnlyForAVerifiedCompletePass) {
  const std::string content = Content(4 * kMiB + 100, 3);
  int calls = 0;
  auto count = [&calls](PieceHashes) { ++calls; };

  {  // Verified and complete: once, even if Finish() comes twice.
    PieceHasher hasher(content.size(), count);
    hasher.Update(AsBytes(content));
    hasher.Finish(true);
    hasher.Finish(true);
    EXPECT_EQ(calls, 1);
  }
  calls = 0;
  {  // The digest did not match.
    PieceHasher hasher(content.size(), count);
    hasher.Update(AsBytes(content));
    hasher.Finish(false);
  }
  {  // One byte short, even on a piece boundary.
    PieceHasher hasher(content.size(), count);
    hasher.Update(AsBytes(content, 0, content.size() - 1));
    hasher.Finish(true);
    PieceHasher boundary(content.size(), count);
    boundary.Update(AsBytes(content, 0, 4 * kMiB));
    boundary.Finish(true);
  }
  {  // A byte too many, alone or at the end of a chunk.
    PieceHasher hasher(content.size(), count);
    hasher.Update(AsBytes(content));
    hasher.Update(AsBytes("x"));
    hasher.Finish(true);
    const std::string longer = content + "y";
    PieceHasher chunk(content.size(), count);
    chunk.Update(AsBytes(longer));
    chunk.Finish(true);
  }
  {  // Abandoned: never finished.
    PieceHasher hasher(content.size(), count);
    hasher.Update(AsBytes(content, 0, 1000));
  }
  {  // Nothing to describe.
    PieceHasher hasher(0, count);
    hasher.Finish(true);
  }
  EXPECT_EQ(calls, 0);
}

// The real seam: the store feeds the tap while it hashes out-of-order writes.
TEST(PieceHasherTest, AsAStoreTapMatchesTheCommittedFile) {
  testing::TempDir temp("hubcache-p2p-torrent-test");
  store::Options options;
  options.cache_dir = temp.path().string();
  auto opened = store::BlobStore::Open(options);
  ASSERT_TRUE(opened) << opened.error().message();
  std::unique_ptr<store::BlobStore> blob_store = std::move(*opened);
  auto results = std::make_shared<std::vector<PieceHashes>>();
  blob_store->AddHashTap([results](const Digest&, std::uint64_t size) {
    return std::make_unique<PieceHasher>(
        size, [results](PieceHashes h) { results->push_back(std::move(h)); });
  });

  const std::string content = Content(9 * kMiB + 7, 5);
  const Digest digest = Sha256Of(content);
  auto writer = blob_store->BeginWrite(digest, content.size());
  ASSERT_TRUE(writer);
  const std::size_t chunk = 3 * kMiB - 5;
  for (std::size_t at = chunk; at < content.size(); at += chunk) {
    ASSERT_TRUE((*writer)->WriteAt(at, AsBytes(content, at, chunk)));
  }
  ASSERT_TRUE((*writer)->WriteAt(0, AsBytes(content, 0, chunk)));
  ASSERT_TRUE((*writer)->Commit());
  ASSERT_EQ(results->size(), 1u);
  auto from_file = HashBlobFile(blob_store->BlobPath(digest), content.size());
  ASSERT_TRUE(from_file) << from_file.error().message();
  EXPECT_EQ((*results)[0].sha1, from_file->sha1);
  EXPECT_EQ(*MakeTorrent(digest, content.size(), (*results)[0]),
            *MakeTorrent(digest, content.size(), *from_file));

  // Bytes that do not match their digest give no hashes.
  const std::string other = Content(5 * kMiB, 6);
  auto bad = blob_store->BeginWrite(Sha256Of("something else"), other.size());
  ASSERT_TRUE(bad);
  ASSERT_TRUE((*bad)->WriteAt(0, AsBytes(other)));
  EXPECT_FALSE((*bad)->Commit());
  EXPECT_EQ(results->size(), 1u);
}

// --- HashBlobFile ---

TEST(HashBlobFileTest, FailsOnAFileOfTheWrongSize) {
  testing::TempDir temp("hubcache-p2p-torrent-test");
  const fs::path path = temp / "blob";
  testing::WriteFile(path, Content(kMiB + 10, 9));
  EXPECT_TRUE(HashBlobFile(path, kMiB + 10));
  EXPECT_EQ(HashBlobFile(path, kMiB + 9).error(), make_error_code(store::Errc::kSizeMismatch));
  EXPECT_EQ(HashBlobFile(path, kMiB + 11).error(), make_error_code(store::Errc::kSizeMismatch));
  EXPECT_EQ(HashBlobFile(path, 0).error(), make_error_code(core::Errc::kInvalidArgument));
  EXPECT_EQ(HashBlobFile(temp / "missing", 10).error(), core::ErrnoError(ENOENT));
}

TEST(HashBlobFileTest, StopsWhenAsked) {
  testing::TempDir temp("hubcache-p2p-torrent-test");
  const fs::path path = temp / "blob";
  testing::WriteFile(path, Content(3 * kMiB, 10));
  std::atomic<bool> stop{false};
  EXPECT_TRUE(HashBlobFile(path, 3 * kMiB, &stop));
  stop = true;
  EXPECT_EQ(HashBlobFile(path, 3 * kMiB, &stop).error(), core::ErrnoError(ECANCELED));
}

// --- CheckTorrentMatches and InfoHash ---

class CheckTorrentTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kSize = 6 * kMiB;

  void SetUp() override {
    content_ = Content(kSize, 12);
    digest_ = Sha256Of(content_);
    auto made = MakeTorrent(digest_, kSize,
                            {PieceSize(kSize), ReferencePieceHashes(content_, PieceSize(kSize))});
    ASSERT_TRUE(made);
    torrent_ = *made;
  }

  // The canonical torrent with `key` set to `value` at the top level.
  std::string WithTopLevelKey(const std::string& key, lt::entry value) const {
    lt::entry e = lt::bdecode({torrent_.data(), static_cast<std::ptrdiff_t>(torrent_.size())});
    e[key] = std::move(value);
    std::string out;
    lt::bencode(std::back_inserter(out), e);
    return out;
  }

  std::string content_;
  Digest digest_ = Sha256Of("");
  std::string torrent_;
};

TEST_F(CheckTorrentTest, AcceptsTheCanonicalTorrent) {
  EXPECT_TRUE(CheckTorrentMatches(torrent_, digest_, kSize));
}

TEST_F(CheckTorrentTest, RefusesAnotherBlob) {
  EXPECT_EQ(CheckTorrentMatches(torrent_, Sha256Of("other"), kSize).error(),
            make_error_code(Errc::kTorrentMismatch));
  EXPECT_EQ(CheckTorrentMatches(torrent_, digest_, kSize + 1).error(),
            make_error_code(Errc::kTorrentMismatch));
  EXPECT_EQ(CheckTorrentMatches(torrent_, digest_, kSize - 1).error(),
            make_error_code(Errc::kTorrentMismatch));
  // The git blob id of the same bytes is another digest with another name.
  EXPECT_EQ(CheckTorrentMatches(torrent_, store::HashBytes(DigestKind::kGitSha1, content_), kSize)
                .error(),
            make_error_code(Errc::kTorrentMismatch));
}

TEST_F(CheckTorrentTest, RefusesMultiFileTorrents) {
  const std::string hex = digest_.Hex();
  {  // The blob as the only file inside a folder named like it.
    lt::file_storage files;
    files.add_file(hex + "/" + hex, kSize);
    EXPECT_EQ(CheckTorrentMatches(ForeignTorrent(files, PieceSize(kSize)), digest_, kSize).error(),
              make_error_code(Errc::kTorrentMismatch));
  }
  {  // The blob and another file.
    lt::file_storage files;
    files.add_file(hex + "/" + hex, kSize);
    files.add_file(hex + "/extra", 1);
    EXPECT_EQ(CheckTorrentMatches(ForeignTorrent(files, PieceSize(kSize)), digest_, kSize).error(),
              make_error_code(Errc::kTorrentMismatch));
  }
}

TEST_F(CheckTorrentTest, RefusesAnotherPieceSize) {
  lt::file_storage files;
  files.add_file(digest_.Hex(), kSize);
  EXPECT_EQ(CheckTorrentMatches(ForeignTorrent(files, 1 << 20), digest_, kSize).error(),
            make_error_code(Errc::kTorrentMismatch));
  lt::file_storage large;
  large.add_file(digest_.Hex(), kSize);
  EXPECT_EQ(CheckTorrentMatches(ForeignTorrent(large, 16 << 20), digest_, kSize).error(),
            make_error_code(Errc::kTorrentMismatch));
}

TEST_F(CheckTorrentTest, RefusesHybridTorrents) {
  testing::TempDir temp("hubcache-p2p-torrent-test");
  testing::WriteFile(temp / digest_.Hex(), content_);
  lt::file_storage files;
  files.add_file(digest_.Hex(), kSize);
  lt::create_torrent creator(files, static_cast<int>(PieceSize(kSize)));  // v1 + v2
  lt::error_code ec;
  lt::set_piece_hashes(creator, temp.path().string(), ec);
  ASSERT_FALSE(ec) << ec.message();
  creator.set_creation_date(0);
  std::string hybrid;
  lt::bencode(std::back_inserter(hybrid), creator.generate());
  ASSERT_TRUE(InfoHash(hybrid));
  EXPECT_EQ(CheckTorrentMatches(hybrid, digest_, kSize).error(),
            make_error_code(Errc::kTorrentMismatch));
}

TEST_F(CheckTorrentTest, RefusesExtrasOutsideAndInsideTheInfoDictionary) {
  for (const char* key : {"announce", "comment", "created by", "url-list"}) {
    const std::string extra = WithTopLevelKey(key, "http://tracker.example/announce");
    // Outside the info dictionary the info-hash stays the same...
    EXPECT_EQ(ToHex(*InfoHash(extra)), ToHex(*InfoHash(torrent_))) << key;
    // ...but a peer must not choose our trackers or web seeds.
    EXPECT_EQ(CheckTorrentMatches(extra, digest_, kSize).error(),
              make_error_code(Errc::kNotCanonical))
        << key;
  }
  EXPECT_EQ(
      CheckTorrentMatches(WithTopLevelKey("creation date", 1700000000), digest_, kSize).error(),
      make_error_code(Errc::kNotCanonical));

  lt::entry e = lt::bdecode({torrent_.data(), static_cast<std::ptrdiff_t>(torrent_.size())});
  e["info"]["private"] = 1;
  std::string priv;
  lt::bencode(std::back_inserter(priv), e);
  EXPECT_EQ(CheckTorrentMatches(priv, digest_, kSize).error(),
            make_error_code(Errc::kNotCanonical));
}

TEST_F(CheckTorrentTest, RefusesGarbage) {
  for (const std::string& bytes :
       {std::string(), std::string("not bencode"), std::string("de"),
        std::string("d4:infod4:name1:xee"), torrent_.substr(0, torrent_.size() - 1)}) {
    EXPECT_EQ(CheckTorrentMatches(bytes, digest_, kSize).error(),
              make_error_code(Errc::kInvalidTorrent));
    EXPECT_EQ(InfoHash(bytes).error(), make_error_code(Errc::kInvalidTorrent));
  }
}

TEST(ToHexTest, LowerCase) {
  const std::uint8_t bytes[] = {0x00, 0x9f, 0xa0, 0xff};
  EXPECT_EQ(ToHex(bytes), "009fa0ff");
  EXPECT_EQ(ToHex({}), "");
}

// --- TorrentFiles ---

class TorrentFilesTest : public ::testing::Test {
 protected:
  testing::TempDir temp_{"hubcache-p2p-torrent-files-test"};
  TorrentFiles files_{temp_ / "torrents"};
  const Digest digest_ = Sha256Of("blob");
};

TEST_F(TorrentFilesTest, RoundTrip) {
  EXPECT_FALSE(files_.Has(digest_));
  const std::string bytes("d4:info\0de", 10);
  ASSERT_TRUE(files_.Put(digest_, bytes));
  const std::string hex = digest_.Hex();
  EXPECT_EQ(files_.PathOf(digest_), temp_ / "torrents" / hex.substr(0, 2) / (hex + ".torrent"));
  EXPECT_TRUE(fs::is_regular_file(files_.PathOf(digest_)));
  EXPECT_TRUE(files_.Has(digest_));
  auto got = files_.Get(digest_);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, bytes);

  // Put replaces, and leaves no temporary file behind.
  ASSERT_TRUE(files_.Put(digest_, "second"));
  EXPECT_EQ(*files_.Get(digest_), "second");
  ASSERT_TRUE(files_.Put(digest_, ""));
  EXPECT_EQ(*files_.Get(digest_), "");
  std::vector<fs::path> all;
  for (const auto& e : fs::recursive_directory_iterator(temp_ / "torrents")) {
    if (e.is_regular_file()) all.push_back(e.path());
  }
  EXPECT_EQ(all, std::vector<fs::path>{files_.PathOf(digest_)});
}

TEST_F(TorrentFilesTest, MissingIsNotFoundAndIoErrorsAreNot) {
  EXPECT_EQ(files_.Get(digest_).error(), make_error_code(core::Errc::kNotFound));
  // A directory where the file should be: an I/O error, not "missing".
  fs::create_directories(files_.PathOf(digest_));
  auto got = files_.Get(digest_);
  ASSERT_FALSE(got);
  EXPECT_NE(got.error(), make_error_code(core::Errc::kNotFound));
  EXPECT_FALSE(files_.Has(digest_));
  // And Put cannot replace a directory: it fails and leaves nothing else.
  EXPECT_FALSE(files_.Put(digest_, "bytes"));
  EXPECT_EQ(std::distance(fs::directory_iterator(files_.PathOf(digest_).parent_path()),
                          fs::directory_iterator()),
            1);
}

TEST_F(TorrentFilesTest, RemoveForgets) {
  const Digest other = Sha256Of("other blob");
  ASSERT_TRUE(files_.Put(digest_, "one"));
  ASSERT_TRUE(files_.Put(other, "two"));
  files_.Remove(digest_);
  EXPECT_FALSE(files_.Has(digest_));
  EXPECT_EQ(files_.Get(digest_).error(), make_error_code(core::Errc::kNotFound));
  EXPECT_EQ(*files_.Get(other), "two");
  files_.Remove(digest_);  // already gone: nothing happens
  files_.Remove(Sha256Of("never stored"));
  EXPECT_TRUE(files_.Has(other));
}

}  // namespace
}  // namespace hubcache::p2p
