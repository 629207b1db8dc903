#include "core/log.h"

#include <gtest/gtest.h>

namespace hubcache::log {
namespace {

TEST(LogTest, TextBodyIsEventThenKeyValues) {
  EXPECT_EQ(RenderBody(Format::kText, "cache_miss",
                       {{"req", "7f3a"}, {"bytes", std::uint64_t{1234}}, {"ok", true},
                        {"delta", -3}}),
            "cache_miss req=7f3a bytes=1234 ok=true delta=-3");
}

TEST(LogTest, TextQuotesValuesThatWouldBreakParsing) {
  EXPECT_EQ(RenderBody(Format::kText, "e",
                       {{"a", "two words"}, {"b", ""}, {"c", "x=y"}, {"d", "q\"\n"}}),
            R"(e a="two words" b="" c="x=y" d="q\"\n")");
}

TEST(LogTest, JsonBodyEscapesEverything) {
  EXPECT_EQ(RenderBody(Format::kJson, "start",
                       {{"path", "a\"b\\c"}, {"n", 5}, {"ctl", std::string_view("\x01", 1)}}),
            R"("event":"start","path":"a\"b\\c","n":5,"ctl":"\u0001")");
}

TEST(LogTest, SecretsPrintAPlaceholder) {
  const Secret token("hf_supersecret");
  const std::string body = RenderBody(Format::kText, "upstream", {{"token", token}});
  EXPECT_EQ(body.find("hf_supersecret"), std::string::npos);
  EXPECT_NE(body.find("[redacted]"), std::string::npos);
  EXPECT_EQ(fmt::format("{}", token), "[redacted]");
}

TEST(LogTest, DurationsAreMilliseconds) {
  EXPECT_EQ(RenderBody(Format::kText, "e", {{"ms", std::chrono::seconds(2)}}), "e ms=2000");
}

TEST(LogTest, ParsesLevelsAndFormats) {
  EXPECT_EQ(ParseLevel("debug").value(), Level::kDebug);
  EXPECT_EQ(ParseLevel("off").value(), Level::kOff);
  EXPECT_FALSE(ParseLevel("verbose"));
  EXPECT_FALSE(ParseLevel("INFO"));
  EXPECT_EQ(ParseFormat("json").value(), Format::kJson);
  EXPECT_FALSE(ParseFormat("xml"));
}

TEST(LogTest, LevelFiltering) {
  Configure({Level::kWarn, Format::kText});
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  Configure({Level::kOff, Format::kText});
  EXPECT_FALSE(Enabled(Level::kError));
  Configure({});
  EXPECT_TRUE(Enabled(Level::kInfo));
}

}  // namespace
}  // namespace hubcache::log
