#include "core/url.h"

#include <gtest/gtest.h>

namespace hubcache::core {
namespace {

TEST(UrlTest, ParsesHttpsWithDefaults) {
  auto url = ParseUrl("https://huggingface.co");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->host, "huggingface.co");
  EXPECT_EQ(url->port, 443);
  EXPECT_FALSE(url->explicit_port);
  EXPECT_EQ(url->path, "");
  EXPECT_EQ(url->Authority(), "huggingface.co");
}

TEST(UrlTest, ParsesEveryPart) {
  auto url = ParseUrl("HTTP://User:Pw@Example.COM:8080/a/b%2Fc?x=1&y=%22");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->userinfo, "User:Pw");
  EXPECT_EQ(url->host, "example.com");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->path, "/a/b%2Fc");
  EXPECT_TRUE(url->has_query);
  EXPECT_EQ(url->query, "x=1&y=%22");
  EXPECT_EQ(url->ToString(), "http://example.com:8080/a/b%2Fc?x=1&y=%22");
}

TEST(UrlTest, ParsesIpv6Literal) {
  auto url = ParseUrl("http://[::1]:9000/x");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_TRUE(url->IsIpv6());
  EXPECT_EQ(url->Authority(), "[::1]:9000");
}

TEST(UrlTest, RejectsWhatIsNotAnHttpUrl) {
  for (const char* bad : {"", "huggingface.co", "ftp://x", "http://", "http://:80",
                          "http://a b", "http://host:0", "http://host:65536", "http://host:x",
                          "http://[::1", "http://[zz]/", "https://h/#frag", "http://h/\x7f",
                          "http://ho$t/"}) {
    EXPECT_FALSE(ParseUrl(bad)) << bad;
  }
}

TEST(ListenAddressTest, ParsesNumericAddresses) {
  auto v4 = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  EXPECT_FALSE(v4->ipv6);
  auto v6 = ParseListenAddress("[::]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::");
  EXPECT_EQ(v6->port, 0);
  EXPECT_TRUE(v6->ipv6);
}

TEST(ListenAddressTest, RejectsNamesAndMalformedInput) {
  for (const char* bad : {"localhost:8080", "127.0.0.1", "127.0.0.1:", ":8080", "::1:8080",
                          "[::1]", "[::1]8080", "1.2.3.4:70000", "1.2.3:80", "[1.2.3.4]:80"}) {
    EXPECT_FALSE(ParseListenAddress(bad)) << bad;
  }
}

}  // namespace
}  // namespace hubcache::core
