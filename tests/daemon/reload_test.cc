#include "daemon/reload.h"

#include <gtest/gtest.h>

namespace hubcache::daemon {
namespace {

config::Loaded Load(std::vector<config::FlagValue> flags) {
  config::Sources sources;
  sources.flags = std::move(flags);
  auto loaded = config::Load(sources);
  EXPECT_TRUE(loaded) << loaded.error();
  return *loaded;
}

TEST(ReloadTest, SeparatesRuntimeKeysFromRestartKeys) {
  const auto before = Load({});
  const auto after = Load({{"log.level", {"debug"}, "--set"},
                           {"access.grant_ttl", {"1m"}, "--set"},
                           {"upstream.connections", {"2"}, "--set"},
                           {"server.listen", {"127.0.0.1:9"}, "--set"}});
  const ReloadPlan plan = PlanReload(before, after);
  EXPECT_EQ(plan.applied, (std::vector<std::string>{"access.grant_ttl", "log.level"}));
  EXPECT_EQ(plan.restart_needed,
            (std::vector<std::string>{"server.listen", "upstream.connections"}));
}

TEST(ReloadTest, NothingChangedMeansNothingToDo) {
  const auto plan = PlanReload(Load({}), Load({}));
  EXPECT_TRUE(plan.applied.empty());
  EXPECT_TRUE(plan.restart_needed.empty());
}

}  // namespace
}  // namespace hubcache::daemon
