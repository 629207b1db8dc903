// The body of a cold fetch a node asks of a blob's leader (p2p/cold_fetch.h).
#include "p2p/cold_fetch.h"

#include <gtest/gtest.h>

#include <string>

#include "core/errc.h"

namespace hubcache::p2p {
namespace {

const std::string kHex(64, 'a');

std::string Body(const std::string& digest, const std::string& size, const std::string& path) {
  return R"({"digest":")" + digest + R"(","size":)" + size + R"(,"path":")" + path + R"("})";
}

TEST(ColdFetchTest, RoundTrips) {
  ColdFetch ask{.digest = *store::Digest::ParseHex(kHex),
                .size = 268435456,
                .resolve_path = "/datasets/org/data/resolve/refs%2Fpr%2F1/dir/a%20b.parquet",
                .exclude = {"127.0.0.3:9000", "[::1]:9000"},
                .skip_leaders = {"127.0.0.2:9000"},
                .sealed_token = "00ff10ab"};
  auto parsed = ParseColdFetch(ColdFetchJson(ask));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->digest, ask.digest);
  EXPECT_EQ(parsed->size, ask.size);
  EXPECT_EQ(parsed->resolve_path, ask.resolve_path);
  EXPECT_EQ(parsed->exclude, ask.exclude);
  EXPECT_EQ(parsed->skip_leaders, ask.skip_leaders);
  EXPECT_EQ(parsed->sealed_token, ask.sealed_token);
  // A git blob id (a regular file) is a digest too.
  EXPECT_TRUE(ParseColdFetch(Body(std::string(40, 'b'), "10", "/org/m/resolve/main/config.json")));
}

TEST(ColdFetchTest, RefusesWhatANodeNeverSends) {
  const std::string path = "/org/m/resolve/main/model.safetensors";
  for (const std::string& body : {
           std::string(), std::string("[]"), std::string("null"), std::string("{"),
           Body("ABC", "1", path),                      // not a digest
           Body(std::string(64, 'A'), "1", path),       // upper-case hex
           Body(kHex, "0", path),                       // empty blob
           Body(kHex, "-5", path),                      // negative
           Body(kHex, "1.5", path),                     // not an integer
           Body(kHex, "1125899906842625", path),        // past 2^50
           R"({"digest":")" + kHex + R"(","size":"1","path":")" + path + R"("})",
           R"({"digest":")" + kHex + R"(","size":1})",  // no path
           Body(kHex, "1", ""),                         // empty path
           Body(kHex, "1", "org/m/resolve/main/x"),     // relative
           Body(kHex, "1", "https://evil/org/m/resolve/main/x"),
           Body(kHex, "1", "//evil/org/m/resolve/main/x"),
           Body(kHex, "1", "/org/m/resolve/main/../../x"),
           Body(kHex, "1", "/org/m/resolve/main/./x"),
           Body(kHex, "1", "/org/m/resolve/main/x/"),
           Body(kHex, "1", "/org/m/resolve/main/x?download=true"),
           Body(kHex, "1", "/org/m/resolve/main/x#frag"),
           Body(kHex, "1", "/org/m/resolve/main/a b"),
           Body(kHex, "1", "/org/m/resolve/main/a\\\\b"),
           Body(kHex, "1", "/org/m/resolve/main/\\u0001"),
           Body(kHex, "1", "/" + std::string(5000, 'x')),
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","exclude":"a:1"})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","exclude":[1]})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","exclude":["a b:1"]})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","skip_leaders":["a:1",2]})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","skip_leaders":")" +
               std::string(17, 'a') + R"("})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","token":"ABCD"})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","token":"abc"})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","token":""})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","token":7})",
           R"({"digest":")" + kHex + R"(","size":1,"path":")" + path + R"(","token":")" +
               std::string(4098, 'a') + R"("})",
       }) {
    auto parsed = ParseColdFetch(body);
    EXPECT_FALSE(parsed) << body;
    if (!parsed) {
      EXPECT_EQ(parsed.error(), core::Errc::kInvalidArgument) << body;
    }
  }
}

TEST(ColdFetchTest, TheLeadersAnswerNamesASourceOrNone) {
  for (const ColdSource& source : {ColdSource{.stored = false, .node = ""},
                                   ColdSource{.stored = false, .node = "127.0.0.4:7000"},
                                   ColdSource{.stored = true, .node = ""}}) {
    auto parsed = ParseColdSource(ColdSourceJson(source));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->stored, source.stored);
    EXPECT_EQ(parsed->node, source.node);
  }
  EXPECT_FALSE(ParseColdSource("{}"));
  EXPECT_FALSE(ParseColdSource(R"({"state":"fetching","source":"a b"})"));
  EXPECT_FALSE(ParseColdSource(R"({"state":"fetching","source":7})"));
}

}  // namespace
}  // namespace hubcache::p2p
