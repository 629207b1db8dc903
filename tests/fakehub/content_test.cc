// Unit tests of the fake Hub's building blocks: generated content, the
// HTTP helpers (encoding, ranges), the signer and the model.
#include "tests/fakehub/content.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "store/digest.h"
#include "tests/fakehub/fixture.h"
#include "tests/fakehub/http_util.h"
#include "tests/fakehub/model.h"
#include "tests/fakehub/signer.h"

namespace hubcache::fakehub {
namespace {

std::string Generated(std::uint64_t seed, std::uint64_t offset, std::size_t n) {
  std::string out(n, '\0');
  FillGenerated(seed, offset, out);
  return out;
}

TEST(ContentTest, GeneratedBytesDependOnlyOnSeedAndOffset) {
  const std::string whole = Generated(7, 0, 4096);
  for (std::uint64_t offset : {0u, 1u, 3u, 7u, 8u, 9u, 100u, 1001u, 4000u}) {
    for (std::size_t n : {0u, 1u, 5u, 8u, 13u, 64u, 95u}) {
      EXPECT_EQ(Generated(7, offset, n), whole.substr(offset, n)) << offset << "+" << n;
    }
  }
  EXPECT_EQ(Generated(7, 0, 4096), whole);
  EXPECT_NE(Generated(8, 0, 64), whole.substr(0, 64));
  EXPECT_NE(Generated(0, 0, 64), Generated(1, 0, 64));
  // Far offsets work without producing what comes before.
  const std::uint64_t far = (1ULL << 40) + 3;
  EXPECT_EQ(Generated(7, far, 16).substr(5), Generated(7, far + 5, 11));
}

TEST(ContentTest, DigestsMatchTheStoreHashers) {
  auto generated = Content::Generated(11, 1'000'003);
  generated->Prepare(true, true);
  const std::string bytes = generated->ReadString();
  ASSERT_EQ(bytes.size(), 1'000'003u);
  EXPECT_EQ(generated->sha256(), store::HashBytes(store::DigestKind::kSha256, bytes).Hex());
  EXPECT_EQ(generated->git_sha1(), store::HashBytes(store::DigestKind::kGitSha1, bytes).Hex());
  // The memo answers a second content with the same (seed, size).
  auto again = Content::Generated(11, 1'000'003);
  again->Prepare(true, false);
  EXPECT_EQ(again->sha256(), generated->sha256());

  auto text = Content::Text("Hello, World!");
  text->Prepare(true, true);
  EXPECT_EQ(text->git_sha1(), "b45ef6fec89518d314f546fd6c3025367b721684");  // utils/sha.py example
  EXPECT_EQ(text->ReadString(7, 100), "World!");
  EXPECT_EQ(text->ReadString(100), "");
  EXPECT_EQ(Content::Generated(3, 0)->ReadString(), "");
}

TEST(ContentTest, GeneratorIsFastEnoughToServeGigabytesPerSecond) {
  std::vector<char> buffer(256 * 1024);
  const std::uint64_t total = 256ULL << 20;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t offset = 0; offset < total; offset += buffer.size()) {
    FillGenerated(42, offset, buffer);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double gb_per_s = static_cast<double>(total) / seconds / 1e9;
  std::printf("generator: %.2f GB/s\n", gb_per_s);
  EXPECT_GT(gb_per_s, 0.5);  // typically 3-8 GB/s; floor allows sanitizers
}

TEST(HttpUtilTest, PercentEncodingFollowsTheClients) {
  EXPECT_EQ(PercentEncode("dir/\xC3\xA9 x+y#1.txt", true), "dir/%C3%A9%20x%2By%231.txt");
  EXPECT_EQ(PercentEncode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(PercentEncode("a-b_c.d~e", false), "a-b_c.d~e");
  EXPECT_EQ(PercentDecode("refs%2Fpr%2F1"), "refs/pr/1");
  EXPECT_EQ(PercentDecode("x+y"), "x+y");
  EXPECT_EQ(PercentDecode("x+y", true), "x y");
  EXPECT_EQ(PercentDecode("%c3%A9"), "\xC3\xA9");
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%2"));
  EXPECT_FALSE(PercentDecode("%zz"));
  const Params params = ParseQuery("paths=a%2Fb&paths=c+d&expand=True&flag");
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].second, "a/b");
  EXPECT_EQ(params[1].second, "c d");
  EXPECT_TRUE(BoolParam(params, "expand", false));
  EXPECT_FALSE(BoolParam(params, "flag", false));
  EXPECT_TRUE(BoolParam(params, "missing", true));
  const auto segments = SplitPath("/a/b%2Fc//d/");
  ASSERT_EQ(segments.size(), 5u);
  EXPECT_EQ(segments[1], "b%2Fc");
  EXPECT_EQ(segments[2], "");
  const std::string bytes("\x00\xff\x10hello", 8);
  EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(bytes)), bytes);
  EXPECT_FALSE(Base64UrlDecode("a+b/"));
}

TEST(HttpUtilTest, RangeSemantics) {
  using Kind = ByteRange::Kind;
  auto check = [](std::string_view header, std::uint64_t size, Kind kind, std::uint64_t first = 0,
                  std::uint64_t last = 0) {
    const ByteRange r = ParseRange(header, size);
    EXPECT_EQ(r.kind, kind) << header;
    if (kind == Kind::kPartial) {
      EXPECT_EQ(r.first, first) << header;
      EXPECT_EQ(r.last, last) << header;
    }
  };
  check("", 100, Kind::kWhole);
  check("bytes=0-0", 100, Kind::kPartial, 0, 0);
  check("bytes=10-19", 100, Kind::kPartial, 10, 19);
  check("bytes=95-", 100, Kind::kPartial, 95, 99);
  check("bytes=-5", 100, Kind::kPartial, 95, 99);
  check("bytes=-500", 100, Kind::kPartial, 0, 99);
  check("bytes=50-100", 100, Kind::kPartial, 50, 99);
  check("bytes=100-", 100, Kind::kUnsatisfiable);
  check("bytes=100-200", 100, Kind::kUnsatisfiable);
  check("bytes=-0", 100, Kind::kUnsatisfiable);
  check("bytes=0-0", 0, Kind::kUnsatisfiable);
  check("bytes=0-1,5-6", 100, Kind::kWhole);
  check("bytes=5-1", 100, Kind::kWhole);
  check("items=0-1", 100, Kind::kWhole);
  check("bytes=x-1", 100, Kind::kWhole);
}

TEST(SignerTest, AcceptsItsOwnUrlsOnly) {
  const Signer signer;
  const std::string path = "/xet-bridge-us/abc/" + std::string(64, 'a');
  const Params good =
      ParseQuery(signer.Sign(path, "inline; filename=\"x\";", std::chrono::seconds(60)));
  EXPECT_EQ(signer.Verify(path, good).verdict, Signer::Verdict::kOk);
  EXPECT_EQ(signer.Verify(path, good).disposition, "inline; filename=\"x\";");
  EXPECT_EQ(signer.Verify(path + "b", good).verdict, Signer::Verdict::kBadSignature);
  EXPECT_EQ(Signer().Verify(path, good).verdict, Signer::Verdict::kBadSignature);
  Params edited = good;
  for (auto& [k, v] : edited) {
    if (k == "response-content-disposition") v = "attachment";
  }
  EXPECT_EQ(signer.Verify(path, edited).verdict, Signer::Verdict::kBadSignature);
  EXPECT_EQ(signer.Verify(path, {}).verdict, Signer::Verdict::kMalformed);
  // A one-second URL is good for at least that second.
  const Params short_lived = ParseQuery(signer.Sign(path, "d", std::chrono::seconds(1)));
  EXPECT_EQ(signer.Verify(path, short_lived).verdict, Signer::Verdict::kOk);
  const Params expired = ParseQuery(signer.Sign(path, "d", std::chrono::seconds(0)));
  EXPECT_EQ(signer.Verify(path, expired).verdict, Signer::Verdict::kExpired);
}

TEST(ModelTest, TreeIdsAreGitTreeIds) {
  // Ids as git computes them (git hash-object, git mktree, git write-tree).
  auto model = LoadFixture(R"(
[[repo]]
id = "t/one"
  [[repo.commit]]
  files = [ { path = "a.txt", text = "hello" } ]
[[repo]]
id = "t/two"
  [[repo.commit]]
  files = [ { path = "dir/a.txt", text = "hello" } ]
)",
                           "test");
  const Commit* one = model->Resolve(*model->FindRepo(RepoType::kModel, "t/one"), "main");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->files[0].oid, "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0");
  EXPECT_EQ(one->root_tree_oid, "65829399355e5929e44741d637d52c614ac21bc3");
  const Commit* two = model->Resolve(*model->FindRepo(RepoType::kModel, "t/two"), "main");
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(two->FindEntry("dir")->tree_oid, one->root_tree_oid);
  EXPECT_EQ(two->root_tree_oid, "5fe749b8eaf1ed890fb8403a31205f29a9dc8959");
  EXPECT_EQ(two->List("", false).size(), 1u);
  EXPECT_EQ(two->List("", true).size(), 2u);
}

TEST(ModelTest, DefaultFixtureLoads) {
  auto model = LoadFixtureFile(DefaultFixturePath());
  const Repo* repo = model->FindRepo(RepoType::kModel, "org/model");
  ASSERT_NE(repo, nullptr);
  EXPECT_NE(model->Resolve(*repo, "refs/pr/1"), nullptr);
  EXPECT_NE(model->Resolve(*repo, "feat/x"), nullptr);
  EXPECT_NE(model->Resolve(*repo, "refs/heads/feat/x"), nullptr);
  EXPECT_EQ(model->Resolve(*repo, "refs/pr/x"), nullptr);
  EXPECT_EQ(model->Resolve(*repo, "HEAD"), model->Resolve(*repo, "main"));
  EXPECT_TRUE(model->IsValidToken("hf_owner"));
  EXPECT_TRUE(model->IsValidToken("hf_approved"));
  EXPECT_TRUE(model->IsValidToken("hf_user"));
  EXPECT_FALSE(model->IsValidToken("hf_other"));
  const Repo* big = model->FindRepo(RepoType::kModel, "org/big");
  ASSERT_NE(big, nullptr);
  const File* file = model->Resolve(*big, "main")->FindFile("model.safetensors");
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->size(), 256u << 20);
  EXPECT_NE(model->FindLfs(file->sha256), nullptr);
}

}  // namespace
}  // namespace hubcache::fakehub
