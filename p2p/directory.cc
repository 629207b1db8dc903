#include "p2p/directory.h"

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

}  // namespace hubcache::p2p
