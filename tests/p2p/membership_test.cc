// Rendezvous hashing: the leader of a blob and the share of each node in a
// wave of downloads (p2p/membership.h).
#include "p2p/membership.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "store/digest.h"

namespace hubcache::p2p {
namespace {

using store::Digest;
using store::DigestKind;

Digest D(const std::string& content) { return store::HashBytes(DigestKind::kSha256, content); }

std::size_t Count(const std::vector<bool>& v) {
  std::size_t n = 0;
  for (bool b : v) n += b ? 1 : 0;
  return n;
}

const std::vector<std::string> kWave = {"127.0.0.2:7000", "127.0.0.3:7000", "127.0.0.4:7000",
                                        "127.0.0.5:7000"};

TEST(WaveShareTest, EveryPieceHasExactlyOneOwnerAndSharesAreEven) {
  const Digest digest = D("a model");
  constexpr std::size_t kPieces = 1024;
  std::vector<int> owners(kPieces, 0);
  for (const std::string& node : kWave) {
    const std::vector<bool> mine = WaveShare(digest, kPieces, kWave, node);
    ASSERT_EQ(mine.size(), kPieces);
    // A quarter each, within what chance allows (σ ≈ 14 pieces).
    EXPECT_GT(Count(mine), 200u) << node;
    EXPECT_LT(Count(mine), 312u) << node;
    for (std::size_t p = 0; p < kPieces; ++p) owners[p] += mine[p] ? 1 : 0;
  }
  for (std::size_t p = 0; p < kPieces; ++p) ASSERT_EQ(owners[p], 1) << "piece " << p;
}

TEST(WaveShareTest, TheSameInputsGiveTheSameShareOnEveryNode) {
  const Digest digest = D("a model");
  // The order in which a node learned of the others does not matter.
  std::vector<std::string> reversed(kWave.rbegin(), kWave.rend());
  EXPECT_EQ(WaveShare(digest, 300, kWave, kWave[1]), WaveShare(digest, 300, reversed, kWave[1]));
  // Another blob divides differently.
  EXPECT_NE(WaveShare(digest, 300, kWave, kWave[1]), WaveShare(D("another"), 300, kWave, kWave[1]));
}

TEST(WaveShareTest, ANodeJoiningTakesOnlyFromTheOthersShares) {
  const Digest digest = D("a model");
  constexpr std::size_t kPieces = 2000;
  std::vector<std::string> grown = kWave;
  grown.push_back("127.0.0.6:7000");
  const std::vector<bool> newcomer = WaveShare(digest, kPieces, grown, grown.back());
  EXPECT_GT(Count(newcomer), 300u);
  for (const std::string& node : kWave) {
    const std::vector<bool> before = WaveShare(digest, kPieces, kWave, node);
    const std::vector<bool> after = WaveShare(digest, kPieces, grown, node);
    for (std::size_t p = 0; p < kPieces; ++p) {
      // A piece a node keeps was its own before; a piece it lost went to
      // the newcomer, not to another old member.
      if (after[p]) {
        EXPECT_TRUE(before[p]) << node << " piece " << p;
      }
      if (before[p] && !after[p]) {
        EXPECT_TRUE(newcomer[p]) << node << " piece " << p;
      }
    }
  }
}

TEST(WaveShareTest, ALoneNodeOrAStrangerHasNoShare) {
  const Digest digest = D("a model");
  EXPECT_TRUE(WaveShare(digest, 100, {kWave[0]}, kWave[0]).empty());
  EXPECT_TRUE(WaveShare(digest, 100, kWave, "10.0.0.1:7000").empty());
}

TEST(RendezvousScoreTest, DependsOnBothTheBlobAndTheNode) {
  EXPECT_EQ(RendezvousScore(D("x"), kWave[0]), RendezvousScore(D("x"), kWave[0]));
  EXPECT_NE(RendezvousScore(D("x"), kWave[0]), RendezvousScore(D("x"), kWave[1]));
  EXPECT_NE(RendezvousScore(D("x"), kWave[0]), RendezvousScore(D("y"), kWave[0]));
}

}  // namespace
}  // namespace hubcache::p2p
