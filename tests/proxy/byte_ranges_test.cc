#include "proxy/byte_ranges.h"

#include <gtest/gtest.h>

namespace hubcache::proxy {
namespace {

using Kind = RangeRequest::Kind;

std::vector<ByteSpan> Spans(std::string_view header, std::uint64_t total) {
  const RangeRequest r = ParseRange(header, total);
  EXPECT_EQ(r.kind, Kind::kRanges) << header;
  return r.spans;
}

TEST(ByteRangesTest, NoHeaderMeansTheWholeBody) {
  EXPECT_EQ(ParseRange("", 100).kind, Kind::kWhole);
}

TEST(ByteRangesTest, TheThreeFormsOfHubProtocolSection9) {
  EXPECT_EQ(Spans("bytes=0-0", 100), (std::vector<ByteSpan>{{0, 0}}));
  EXPECT_EQ(Spans("bytes=10-19", 100), (std::vector<ByteSpan>{{10, 19}}));
  EXPECT_EQ(Spans("bytes=95-", 100), (std::vector<ByteSpan>{{95, 99}}));
  EXPECT_EQ(Spans("bytes=-5", 100), (std::vector<ByteSpan>{{95, 99}}));
}

TEST(ByteRangesTest, EndsPastTheLastByteAreClamped) {
  EXPECT_EQ(Spans("bytes=90-100", 100), (std::vector<ByteSpan>{{90, 99}}));  // hf_transfer
  EXPECT_EQ(Spans("bytes=0-99999999999", 100), (std::vector<ByteSpan>{{0, 99}}));
  EXPECT_EQ(Spans("bytes=-500", 100), (std::vector<ByteSpan>{{0, 99}}));
}

TEST(ByteRangesTest, StartsAtOrPastTheEndAre416) {
  EXPECT_EQ(ParseRange("bytes=100-", 100).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=150-200", 100).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=-0", 100).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(ParseRange("bytes=0-0", 0).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(UnsatisfiedContentRange(100), "bytes */100");
}

TEST(ByteRangesTest, ListsKeepSatisfiableMembers) {
  EXPECT_EQ(Spans("bytes=0-9, 20-29,-5", 100),
            (std::vector<ByteSpan>{{0, 9}, {20, 29}, {95, 99}}));
  EXPECT_EQ(Spans("bytes=0-9,200-300", 100), (std::vector<ByteSpan>{{0, 9}}));
  EXPECT_EQ(ParseRange("bytes=200-300,400-", 100).kind, Kind::kUnsatisfiable);
}

TEST(ByteRangesTest, MalformedOrAbusiveHeadersAre416NotA200) {
  for (const char* bad : {"bytes=", "bytes=a-b", "bytes=5-1", "items=0-1", "bytes=1", "bytes=--1",
                          "bytes=0-1,", "bytes=0x10-20", "bytes=-"}) {
    EXPECT_EQ(ParseRange(bad, 100).kind, Kind::kUnsatisfiable) << bad;
  }
  std::string many = "bytes=0-0";
  for (std::size_t i = 1; i <= kMaxRanges; ++i) many += "," + std::to_string(i) + "-" + std::to_string(i);
  EXPECT_EQ(ParseRange(many, 1000).kind, Kind::kUnsatisfiable);
}

TEST(ByteRangesTest, ContentRangeHasANumericTotal) {
  EXPECT_EQ(ContentRange({10, 19}, 100), "bytes 10-19/100");
}

TEST(ContentRangeTest, ParsesWhatAnUpstream206Says) {
  auto full = ParseContentRange("bytes 10-19/100");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->span, (ByteSpan{10, 19}));
  EXPECT_EQ(full->total, 100u);
  auto unknown_total = ParseContentRange("bytes 0-0/*");
  ASSERT_TRUE(unknown_total);
  EXPECT_EQ(unknown_total->span, (ByteSpan{0, 0}));
  EXPECT_FALSE(unknown_total->total);
  for (const char* bad : {"", "bytes", "bytes 10-19", "bytes */100", "bytes 19-10/100",
                          "bytes -5/100", "bytes 1-2x/100", "items 1-2/3", "bytes 1/2-3",
                          "bytes 99999999999999999999-1/2"}) {
    EXPECT_FALSE(ParseContentRange(bad)) << bad;
  }
}

}  // namespace
}  // namespace hubcache::proxy
