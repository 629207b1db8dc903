#include "proxy/shaping.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace hubcache::proxy {
namespace {

TEST(ShapingTest, XetLinkEntriesGoOthersStay) {
  const std::string link =
      "<https://huggingface.co/api/models/org/m/xet-read-token/abc>; rel=\"xet-auth\", "
      "<https://cas-server.xethub.hf.co/v1/reconstructions/ff>; rel=\"xet-reconstruction-info\"";
  EXPECT_EQ(StripXetLinks(link), std::nullopt);
  const std::string mixed = "<https://huggingface.co/api/x?cursor=a,b>; rel=\"next\", " + link;
  EXPECT_EQ(StripXetLinks(mixed), "<https://huggingface.co/api/x?cursor=a,b>; rel=\"next\"");
}

// Tabs are whitespace too (found by tests/fuzz/shaping_fuzz.cc: a tab
// after the rel kept the entry, which a second pass then dropped).
TEST(ShapingTest, XetRelsAmongTabsAreFound) {
  EXPECT_EQ(StripXetLinks("<https://h/t>;\trel=xet-auth\t"), std::nullopt);
  EXPECT_EQ(StripXetLinks("xet-auth\t"), std::nullopt);
  EXPECT_EQ(StripXetLinks("\t<https://h/n>; rel=\"next\"\t, <https://c/r>; rel=\"xet-reconstruction-info\""),
            "<https://h/n>; rel=\"next\"");
}

TEST(ShapingTest, XetHeadersAreRemoved) {
  http::fields fields;
  fields.set("X-Xet-Hash", "abc");
  fields.set("X-Xet-Refresh-Route", "/api/x");
  fields.set("x-xet-cas-url", "https://cas");
  fields.set("X-Linked-Etag", "\"e\"");
  fields.set(http::field::link,
             "<https://h/api/t>; rel=\"xet-auth\", <https://h/next>; rel=\"next\"");
  StripXetHeaders(fields);
  EXPECT_EQ(fields.count("X-Xet-Hash"), 0u);
  EXPECT_EQ(fields.count("X-Xet-Refresh-Route"), 0u);
  EXPECT_EQ(fields.count("X-Xet-Cas-Url"), 0u);
  EXPECT_EQ(fields["X-Linked-Etag"], "\"e\"");
  EXPECT_EQ(fields[http::field::link], "<https://h/next>; rel=\"next\"");
  http::fields only_xet;
  only_xet.set(http::field::link, "<https://h/api/t>; rel=\"xet-auth\"");
  StripXetHeaders(only_xet);
  EXPECT_EQ(only_xet.count(http::field::link), 0u);
}

TEST(ShapingTest, LinkBaseIsMovedToTheProxyKeepingEverythingElse) {
  const std::string link =
      "<https://huggingface.co/api/datasets/org/d/tree/abc?recursive=true&expand=false&cursor=ZXk%3D>; "
      "rel=\"next\"";
  EXPECT_EQ(RewriteLinkBase(link, "https://huggingface.co", "http://10.0.0.5:8080"),
            "<http://10.0.0.5:8080/api/datasets/org/d/tree/abc?recursive=true&expand=false"
            "&cursor=ZXk%3D>; rel=\"next\"");
  // Another host, or a host that merely starts the same, is left alone.
  const std::string other = "<https://huggingface.com.evil/api>; rel=\"next\"";
  EXPECT_EQ(RewriteLinkBase(other, "https://huggingface.co", "http://p"), other);
}

// A renamed repo's redirect (issue 15): relative stays relative, under
// hubcache's path prefix if it has one; the Hub's absolute URLs move onto
// hubcache; anything else is never passed on.
TEST(ShapingTest, LocationStaysOnHubcache) {
  const std::string hub = "https://huggingface.co";
  EXPECT_EQ(RewriteLocation("/org/new/resolve/main/config.json", hub, "http://10.0.0.5:8080"),
            "/org/new/resolve/main/config.json");
  EXPECT_EQ(RewriteLocation("/api/models/org/new?expand=sha", hub, "http://h:8080/hf/"),
            "/hf/api/models/org/new?expand=sha");
  EXPECT_EQ(RewriteLocation("config.json", hub, "http://h:8080/hf"), "config.json");
  EXPECT_EQ(RewriteLocation("https://huggingface.co/org/new/resolve/main/a%20b?x=1", hub,
                            "http://h:8080/hf"),
            "http://h:8080/hf/org/new/resolve/main/a%20b?x=1");
  EXPECT_EQ(RewriteLocation("https://huggingface.co", hub, "http://h:8080"), "http://h:8080");
  EXPECT_EQ(RewriteLocation("https://cdn-lfs.hf.co/repos/ab/cd?Signature=x", hub, "http://h"),
            std::nullopt);
  EXPECT_EQ(RewriteLocation("https://huggingface.co.evil.example/org/new", hub, "http://h"),
            std::nullopt);
  EXPECT_EQ(RewriteLocation("//evil.example/org/new", hub, "http://h"), std::nullopt);

  http::fields upstream;
  upstream.set(http::field::location, "/org/new/resolve/main/config.json");
  upstream.set("X-Request-Id", "Root=1-abc");
  const http::fields relayed = ShapeRelayedHeaders(upstream, hub, "http://proxy/prefix");
  EXPECT_EQ(relayed[http::field::location], "/prefix/org/new/resolve/main/config.json");
  EXPECT_EQ(relayed["X-Request-Id"], "Root=1-abc");
  http::fields elsewhere;
  elsewhere.set(http::field::location, "https://cas-bridge.xethub.hf.co/x");
  EXPECT_EQ(ShapeRelayedHeaders(elsewhere, hub, "http://proxy").count(http::field::location), 0u);
}

TEST(ShapingTest, XetHashIsRemovedAndEveryOtherByteKept) {
  const std::string tree =
      R"([{"type":"file","oid":"abc","size":5,"path":"a.bin","lfs":{"oid":"ff","size":5,"pointerSize":130},"xetHash":"1234"},)"
      R"({"type":"file","oid":"def","size":2,"path":"b.txt"},)"
      R"({"xetHash":"99","type":"file","oid":"0","size":1,"path":"c"},)"
      R"({"type":"directory","oid":"t","size":0,"path":"dir"}])";
  const std::string want =
      R"([{"type":"file","oid":"abc","size":5,"path":"a.bin","lfs":{"oid":"ff","size":5,"pointerSize":130}},)"
      R"({"type":"file","oid":"def","size":2,"path":"b.txt"},)"
      R"({"type":"file","oid":"0","size":1,"path":"c"},)"
      R"({"type":"directory","oid":"t","size":0,"path":"dir"}])";
  EXPECT_EQ(StripXetHash(tree), want);
  EXPECT_NO_THROW(nlohmann::json::parse(StripXetHash(tree)));
  EXPECT_EQ(StripXetHash(R"({"xetHash":"only"})"), "{}");
  // A path or value that merely contains the word is not touched.
  const std::string tricky = R"([{"path":"xetHash","note":"\"xetHash\":1"}])";
  EXPECT_EQ(StripXetHash(tricky), tricky);
  // Malformed input comes back unchanged.
  EXPECT_EQ(StripXetHash(R"([{"xetHash":)"), R"([{"xetHash":)");
}

}  // namespace
}  // namespace hubcache::proxy
