#include "config/units.h"

#include <gtest/gtest.h>

namespace hubcache::config {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, ParsesUnitsAndCombinations) {
  EXPECT_EQ(ParseDuration("30s"), milliseconds(30'000));
  EXPECT_EQ(ParseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(ParseDuration("1h30m"), milliseconds(5'400'000));
  EXPECT_EQ(ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(ParseDuration("2d"), milliseconds(172'800'000));
  EXPECT_EQ(ParseDuration("0s"), milliseconds(0));
  EXPECT_EQ(ParseDuration("30"), milliseconds(30'000));  // bare number = seconds
}

TEST(DurationTest, RejectsMalformed) {
  for (const char* bad : {"", "s", "5x", "-1s", "1.5s", "1m30", "30 s", "5M", "99999999999999999999s",
                          "9999999999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  }
}

TEST(DurationTest, FormatsTheShortestExactSpelling) {
  EXPECT_EQ(FormatDuration(milliseconds(30'000)), "30s");
  EXPECT_EQ(FormatDuration(milliseconds(300'000)), "5m");
  EXPECT_EQ(FormatDuration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(FormatDuration(milliseconds(1'250)), "1s250ms");
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  for (auto ms : {1, 999, 61'001, 86'400'000, 90'061'001}) {
    EXPECT_EQ(ParseDuration(FormatDuration(milliseconds(ms))), milliseconds(ms)) << ms;
  }
}

TEST(SizeTest, ParsesDecimalAndBinaryUnits) {
  EXPECT_EQ(ParseSize("500GB"), 500'000'000'000ULL);
  EXPECT_EQ(ParseSize("8MiB"), 8ULL * 1024 * 1024);
  EXPECT_EQ(ParseSize("1048576"), 1048576ULL);
  EXPECT_EQ(ParseSize("1.5GB"), 1'500'000'000ULL);
  EXPECT_EQ(ParseSize("0.5KiB"), 512ULL);
  EXPECT_EQ(ParseSize("12 kb"), 12'000ULL);
  EXPECT_EQ(ParseSize("2T"), 2'000'000'000'000ULL);
  EXPECT_EQ(ParseSize("1b"), 1ULL);
  EXPECT_EQ(ParseSize("16EiB"), std::nullopt);
}

TEST(SizeTest, RejectsMalformed) {
  for (const char* bad : {"", "GB", "-1", "5XB", "1.GB", ".5GB", "1,5GB", "1  GB", "1e9",
                          "99999999999999999999", "20000PB"}) {
    EXPECT_FALSE(ParseSize(bad)) << bad;
  }
}

TEST(SizeTest, FormatsTheLargestExactUnit) {
  EXPECT_EQ(FormatSize(0), "0");
  EXPECT_EQ(FormatSize(500'000'000'000ULL), "500GB");
  EXPECT_EQ(FormatSize(8ULL * 1024 * 1024), "8MiB");
  EXPECT_EQ(FormatSize(1023), "1023");
  EXPECT_EQ(FormatSize(16 * 1024), "16KiB");
  for (std::uint64_t v : {1ULL, 1000ULL, 1024ULL, 123'456'789ULL, 1ULL << 40}) {
    EXPECT_EQ(ParseSize(FormatSize(v)), v) << v;
  }
}

TEST(EditDistanceTest, CountsEdits) {
  EXPECT_EQ(EditDistance("listen", "listen"), 0u);
  EXPECT_EQ(EditDistance("listn", "listen"), 1u);
  EXPECT_EQ(EditDistance("cachedir", "cache_dir"), 1u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
}

}  // namespace
}  // namespace hubcache::config
