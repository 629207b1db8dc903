#include "p2p/directory.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace hubcache::p2p {

void Directory::Hold(const std::string& hex, const std::string& node) {
  std::lock_guard lock(mu_);
  Record& record = records_[hex];
  record.holders[node] = true;
  record.fetching.erase(node);
}

void Directory::Drop(const std::string& hex, const std::string& node) {
  std::lock_guard lock(mu_);
  auto it = records_.find(hex);
  if (it == records_.end()) return;
  it->second.holders.erase(node);
  it->second.fetching.erase(node);
  if (it->second.holders.empty() && it->second.fetching.empty()) records_.erase(it);
}

void Directory::Fetching(const std::string& hex, const std::string& node) {
  std::lock_guard lock(mu_);
  Record& record = records_[hex];
  if (!record.holders.contains(node)) record.fetching[node] = std::chrono::steady_clock::now();
}

void Directory::ForgetNode(const std::string& node) {
  std::lock_guard lock(mu_);
  for (auto it = records_.begin(); it != records_.end();) {
    it->second.holders.erase(node);
    it->second.fetching.erase(node);
    it = it->second.holders.empty() && it->second.fetching.empty() ? records_.erase(it)
                                                                    : std::next(it);
  }
}

Directory::Found Directory::Find(const std::string& hex) const {
  Found found;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  auto it = records_.find(hex);
  if (it == records_.end()) return found;
  for (const auto& [node, held] : it->second.holders) found.holders.push_back(node);
  for (const auto& [node, since] : it->second.fetching) {
    if (now - since < kFetchingTtl) found.fetching.push_back(node);
  }
  return found;
}

std::size_t Directory::size() const {
  std::lock_guard lock(mu_);
  return records_.size();
}

bool IsHexDigest(std::string_view hex) {
  if (hex.size() != 64 && hex.size() != 40) return false;
  return std::all_of(hex.begin(), hex.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<Holdings> ParseHoldings(std::string_view body) {
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return std::nullopt;
  auto digests = json.find("digests");
  if (digests == json.end() || !digests->is_array()) return std::nullopt;
  Holdings out;
  for (const nlohmann::json& item : *digests) {
    if (!item.is_string() || !IsHexDigest(item.get_ref<const std::string&>())) return std::nullopt;
    out.digests.push_back(item.get<std::string>());
  }
  if (auto full = json.find("full"); full != json.end()) {
    if (!full->is_boolean()) return std::nullopt;
    out.full = full->get<bool>();
  }
  return out;
}

}  // namespace hubcache::p2p
