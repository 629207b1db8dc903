#include "store/digest.h"

#include <gtest/gtest.h>

#include <unordered_set>

#include "core/errc.h"

namespace hubcache::store {
namespace {

TEST(DigestTest, Sha256OfEmptyInput) {
  EXPECT_EQ(HashBytes(DigestKind::kSha256, "").Hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DigestTest, GitBlobIdOfHelloWorld) {
  // git hash-object of "Hello, World!" (HUB_PROTOCOL.md §2.2).
  EXPECT_EQ(HashBytes(DigestKind::kGitSha1, "Hello, World!").Hex(),
            "b45ef6fec89518d314f546fd6c3025367b721684");
  // And of empty content: git's well-known empty blob.
  EXPECT_EQ(HashBytes(DigestKind::kGitSha1, "").Hex(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST(DigestTest, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 7);
  for (DigestKind kind : {DigestKind::kSha256, DigestKind::kGitSha1}) {
    Hasher hasher(kind, data.size());
    for (std::size_t pos = 0; pos < data.size(); pos += 777) {
      hasher.Update(std::string_view(data).substr(pos, 777));
    }
    EXPECT_EQ(hasher.bytes_hashed(), data.size());
    EXPECT_EQ(hasher.Finish(), HashBytes(kind, data));
  }
}

TEST(DigestTest, ParseRoundTripsAndPicksKindByLength) {
  const std::string sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  const std::string sha1 = "b45ef6fec89518d314f546fd6c3025367b721684";
  auto a = Digest::ParseHex(sha256);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind(), DigestKind::kSha256);
  EXPECT_EQ(a->Hex(), sha256);
  EXPECT_EQ(a->KindName(), "sha256");
  EXPECT_EQ(a->bytes().size(), 32u);
  auto b = Digest::ParseHex(sha1);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->kind(), DigestKind::kGitSha1);
  EXPECT_EQ(b->Hex(), sha1);
  EXPECT_EQ(b->KindName(), "sha1");
  EXPECT_EQ(Digest::FromBytes(b->kind(), b->bytes()), *b);
}

TEST(DigestTest, ParseRejectsAnythingElse) {
  const std::string good = "b45ef6fec89518d314f546fd6c3025367b721684";
  for (const std::string& bad :
       {std::string(), good.substr(1), good + "0", std::string("B45EF6FEC89518D314F546FD6C3025367B721684"),
        std::string("g45ef6fec89518d314f546fd6c3025367b721684"), std::string("../../../etc/passwd"),
        good.substr(0, 39) + std::string(1, '\0')}) {
    auto parsed = Digest::ParseHex(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_EQ(parsed.error(), core::Errc::kInvalidArgument);
    }
  }
  EXPECT_FALSE(Digest::Parse(DigestKind::kSha256, good));  // a sha1 is not a sha256
}

TEST(DigestTest, OrderingAndHashDistinguishKinds) {
  const Digest sha1 = HashBytes(DigestKind::kGitSha1, "x");
  const Digest sha256 = HashBytes(DigestKind::kSha256, "x");
  EXPECT_NE(sha1, sha256);
  std::unordered_set<Digest> set{sha1, sha256, sha1};
  EXPECT_EQ(set.size(), 2u);
}

}  // namespace
}  // namespace hubcache::store
