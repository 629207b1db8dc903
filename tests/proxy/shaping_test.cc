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
