#include "daemon/reload.h"

#include <map>
#include <sstream>

namespace hubcache::daemon {
namespace {

// "section.key" → value, from config::Render's TOML ("key = value  # origin").
std::map<std::string, std::string> Values(const config::Loaded& loaded) {
  std::map<std::string, std::string> out;
  std::istringstream in(config::Render(loaded));
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    const std::size_t eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 3);
    const std::size_t origin = value.rfind("  # ");
    if (origin != std::string::npos) value.resize(origin);
    out[section + "." + line.substr(0, eq)] = value;
  }
  return out;
}

}  // namespace

bool IsReloadable(std::string_view key) { return config::IsReloadableKey(key); }

ReloadPlan PlanReload(const config::Loaded& before, const config::Loaded& after) {
  ReloadPlan plan;
  const auto old_values = Values(before);
  for (const auto& [key, value] : Values(after)) {
    auto it = old_values.find(key);
    if (it != old_values.end() && it->second == value) continue;
    (IsReloadable(key) ? plan.applied : plan.restart_needed).push_back(key);
  }
  return plan;
}

}  // namespace hubcache::daemon
