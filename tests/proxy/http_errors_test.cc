#include "proxy/http_errors.h"

#include <gtest/gtest.h>

#include <boost/beast/core/error.hpp>

#include "core/errc.h"
#include "proxy/errc.h"
#include "store/errc.h"

namespace hubcache::proxy {
namespace {

TEST(HttpStatusForTest, TimeoutsAre504) {
  EXPECT_EQ(HttpStatusFor(boost::beast::error::timeout), 504u);
  EXPECT_EQ(HttpStatusFor(make_error_code(boost::system::errc::timed_out)), 504u);
}

TEST(HttpStatusForTest, WhatHubcacheCannotDoNowIs503) {
  EXPECT_EQ(HttpStatusFor(Errc::kOffline), 503u);
  EXPECT_EQ(HttpStatusFor(Errc::kSourceUnavailable), 503u);
  EXPECT_EQ(HttpStatusFor(Errc::kDownloadUnreadable), 503u);
  EXPECT_EQ(HttpStatusFor(core::Errc::kUnavailable), 503u);
}

TEST(HttpStatusForTest, AnUnusableOrUnreachableHubIs502) {
  EXPECT_EQ(HttpStatusFor(core::Errc::kCorrupt), 502u);
  EXPECT_EQ(HttpStatusFor(Errc::kBadRedirect), 502u);
  EXPECT_EQ(HttpStatusFor(Errc::kUnexpectedStatus), 502u);
  EXPECT_EQ(HttpStatusFor(Errc::kResumeFailed), 502u);
  EXPECT_EQ(HttpStatusFor(store::Errc::kDigestMismatch), 502u);
  EXPECT_EQ(HttpStatusFor(make_error_code(boost::system::errc::connection_refused)), 502u);
}

}  // namespace
}  // namespace hubcache::proxy
