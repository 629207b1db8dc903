#include "p2p/cluster_auth.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/errc.h"
#include "p2p/directory.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace hubcache::p2p {
namespace {

using std::chrono::seconds;

const ClusterKey kKey(Secret("a shared cluster secret of some length"));
const ClusterKey kOtherKey(Secret("another cluster's secret, same length"));
constexpr std::int64_t kNow = 1'800'000'000;

TEST(ClusterAuthTest, SignedRequestVerifies) {
  const SignedHeaders auth = kKey.Sign("POST", "/_cluster/v1/hold", R"({"digests":[]})",
                                       "10.0.0.2:8090", kNow);
  EXPECT_EQ(auth.node, "10.0.0.2:8090");
  EXPECT_EQ(auth.time, std::to_string(kNow));
  EXPECT_EQ(auth.signature.size(), 64u);
  EXPECT_EQ(kKey.Verify("POST", "/_cluster/v1/hold", R"({"digests":[]})", auth, kNow, seconds(60)),
            AuthVerdict::kOk);
  // Within the skew either way.
  EXPECT_EQ(kKey.Verify("POST", "/_cluster/v1/hold", R"({"digests":[]})", auth, kNow + 60,
                        seconds(60)),
            AuthVerdict::kOk);
  EXPECT_EQ(kKey.Verify("POST", "/_cluster/v1/hold", R"({"digests":[]})", auth, kNow - 60,
                        seconds(60)),
            AuthVerdict::kOk);
}

TEST(ClusterAuthTest, AnyChangeBreaksTheSignature) {
  const SignedHeaders auth = kKey.Sign("GET", "/_cluster/v1/locate/ab", "", "n1:1", kNow);
  EXPECT_EQ(kKey.Verify("POST", "/_cluster/v1/locate/ab", "", auth, kNow, seconds(60)),
            AuthVerdict::kBadSignature);
  EXPECT_EQ(kKey.Verify("GET", "/_cluster/v1/locate/ac", "", auth, kNow, seconds(60)),
            AuthVerdict::kBadSignature);
  EXPECT_EQ(kKey.Verify("GET", "/_cluster/v1/locate/ab", "x", auth, kNow, seconds(60)),
            AuthVerdict::kBadSignature);
  SignedHeaders other_node = auth;
  other_node.node = "n2:1";
  EXPECT_EQ(kKey.Verify("GET", "/_cluster/v1/locate/ab", "", other_node, kNow, seconds(60)),
            AuthVerdict::kBadSignature);
  SignedHeaders other_time = auth;
  other_time.time = std::to_string(kNow + 1);
  EXPECT_EQ(kKey.Verify("GET", "/_cluster/v1/locate/ab", "", other_time, kNow, seconds(60)),
            AuthVerdict::kBadSignature);
}

TEST(ClusterAuthTest, AnotherSecretIsRefused) {
  const SignedHeaders auth = kOtherKey.Sign("GET", "/_cluster/v1/health", "", "n1:1", kNow);
  EXPECT_EQ(kKey.Verify("GET", "/_cluster/v1/health", "", auth, kNow, seconds(60)),
            AuthVerdict::kBadSignature);
  EXPECT_NE(kKey.passkey(), kOtherKey.passkey());
  EXPECT_TRUE(kKey.IsPasskey(kKey.passkey()));
  EXPECT_FALSE(kKey.IsPasskey(kOtherKey.passkey()));
  EXPECT_FALSE(kKey.IsPasskey(""));
}

TEST(ClusterAuthTest, ASealedTokenOpensOnlyWithTheKeyAndForItsFile) {
  const Secret token("hf_approved_token_value");
  const std::string context = "abcd\n/org/gated/resolve/0123/model.safetensors";
  const std::string sealed = kKey.Seal(token, context);
  // Nothing of the token shows, and each seal differs (a fresh nonce).
  std::string plain_hex;
  for (unsigned char c : token.Reveal()) plain_hex += fmt::format("{:02x}", c);
  EXPECT_EQ(sealed.find(plain_hex.substr(0, 16)), std::string::npos);
  EXPECT_NE(kKey.Seal(token, context), sealed);
  auto opened = kKey.Open(sealed, context);
  ASSERT_TRUE(opened);
  EXPECT_EQ(opened->Reveal(), token.Reveal());
  // Another file, another key, an altered byte, a truncated value: refused.
  EXPECT_FALSE(kKey.Open(sealed, "abcd\n/org/other/resolve/0123/model.safetensors"));
  EXPECT_FALSE(kOtherKey.Open(sealed, context));
  std::string altered = sealed;
  altered[30] = altered[30] == '0' ? '1' : '0';
  EXPECT_FALSE(kKey.Open(altered, context));
  EXPECT_FALSE(kKey.Open(sealed.substr(0, sealed.size() - 2), context));
  EXPECT_FALSE(kKey.Open("", context));
  EXPECT_FALSE(kKey.Open("zz", context));
  // An empty value seals too (it opens to an empty secret).
  auto empty = kKey.Open(kKey.Seal(Secret(), context), context);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(ClusterAuthTest, OldOrFutureRequestsAreRefused) {
  const SignedHeaders auth = kKey.Sign("GET", "/_cluster/v1/health", "", "n1:1", kNow);
  EXPECT_EQ(kKey.Verify("GET", "/_cluster/v1/health", "", auth, kNow + 61, seconds(60)),
            AuthVerdict::kClockSkew);
  EXPECT_EQ(kKey.Verify("GET", "/_cluster/v1/health", "", auth, kNow - 61, seconds(60)),
            AuthVerdict::kClockSkew);
}

TEST(ClusterAuthTest, MissingOrMalformedHeaders) {
  const SignedHeaders auth = kKey.Sign("GET", "/x", "", "n1:1", kNow);
  for (auto strip : {&SignedHeaders::node, &SignedHeaders::time, &SignedHeaders::signature}) {
    SignedHeaders partial = auth;
    partial.*strip = "";
    EXPECT_EQ(kKey.Verify("GET", "/x", "", partial, kNow, seconds(60)), AuthVerdict::kUnsigned);
  }
  SignedHeaders bad_time = auth;
  bad_time.time = "12x";
  EXPECT_EQ(kKey.Verify("GET", "/x", "", bad_time, kNow, seconds(60)), AuthVerdict::kMalformed);
  bad_time.time = "99999999999999999999999";
  EXPECT_EQ(kKey.Verify("GET", "/x", "", bad_time, kNow, seconds(60)), AuthVerdict::kMalformed);
  SignedHeaders short_mac = auth;
  short_mac.signature.pop_back();
  EXPECT_EQ(kKey.Verify("GET", "/x", "", short_mac, kNow, seconds(60)), AuthVerdict::kMalformed);
}

TEST(ClusterAuthTest, SecretFromFile) {
  testing::TempDir dir("cluster-auth");
  testing::WriteFile(dir.path() / "secret", "a shared cluster secret of some length\n\n");
  auto key = ClusterKey::FromFile(dir.path() / "secret");
  ASSERT_TRUE(key) << key.error().message();
  // Trailing newlines do not count: the same key as without them.
  EXPECT_EQ(key->passkey(), kKey.passkey());
  testing::WriteFile(dir.path() / "short", "too short\n");
  auto short_key = ClusterKey::FromFile(dir.path() / "short");
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error(), core::Errc::kInvalidArgument);
  EXPECT_FALSE(ClusterKey::FromFile(dir.path() / "missing"));
}

TEST(DirectoryTest, HoldingsBodiesParseOrAreRefused) {
  const std::string sha(64, 'a');
  const std::string git(40, 'b');
  auto full = ParseHoldings(R"({"digests":[")" + sha + R"(",")" + git + R"("],"full":true})");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->digests, (std::vector<std::string>{sha, git}));
  EXPECT_TRUE(full->full);
  auto some = ParseHoldings(R"({"digests":[]})");
  ASSERT_TRUE(some);
  EXPECT_FALSE(some->full);
  for (const std::string& body :
       {std::string(""), std::string("[]"), std::string(R"({"digests":"x"})"),
        R"({"digests":[")" + std::string(64, 'A') + R"("]})", std::string(R"({"digests":["abc"]})"),
        std::string(R"({"digests":[1]})"),
        // Once a thrown exception in the daemon (a signed peer's request).
        std::string(R"({"digests":[],"full":"yes"})")}) {
    EXPECT_FALSE(ParseHoldings(body)) << body;
  }
}

TEST(DirectoryTest, HoldersFetchersAndForgetting) {
  Directory directory;
  directory.Hold("aa", "n1");
  directory.Hold("aa", "n2");
  directory.Fetching("aa", "n3");
  directory.Fetching("aa", "n1");  // a holder is not fetching
  auto found = directory.Find("aa");
  EXPECT_EQ(found.holders, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(found.fetching, (std::vector<std::string>{"n3"}));
  directory.Hold("aa", "n3");  // it finished
  found = directory.Find("aa");
  EXPECT_EQ(found.holders, (std::vector<std::string>{"n1", "n2", "n3"}));
  EXPECT_TRUE(found.fetching.empty());
  directory.Drop("aa", "n2");
  directory.Hold("bb", "n1");
  EXPECT_EQ(directory.size(), 2u);
  directory.ForgetNode("n1");
  EXPECT_EQ(directory.Find("aa").holders, (std::vector<std::string>{"n3"}));
  EXPECT_TRUE(directory.Find("bb").holders.empty());
  EXPECT_EQ(directory.size(), 1u);
  EXPECT_TRUE(directory.Find("cc").holders.empty());
}

}  // namespace
}  // namespace hubcache::p2p
