#include "proxy/connection_pool.h"

namespace hubcache::proxy {

std::unique_ptr<UpstreamConnection> ConnectionPool::Take(const Origin& origin) {
  std::lock_guard lock(mu_);
  EvictExpired();
  auto it = idle_.find(origin.Key());
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto connection = std::move(it->second.back());
  it->second.pop_back();
  --idle_total_;
  return connection;
}

void ConnectionPool::Put(std::unique_ptr<UpstreamConnection> connection) {
  connection->idle_since = std::chrono::steady_clock::now();
  std::unique_ptr<UpstreamConnection> dropped;
  std::lock_guard lock(mu_);
  EvictExpired();
  auto& list = idle_[connection->origin().Key()];
  if (list.size() >= limits_.idle_per_origin) {
    dropped = std::move(list.front());
    list.pop_front();
    --idle_total_;
  } else if (idle_total_ >= limits_.max_idle) {
    // Drop the oldest idle connection of any origin.
    auto oldest = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (!it->second.empty() &&
          (oldest == idle_.end() ||
           it->second.front()->idle_since < oldest->second.front()->idle_since)) {
        oldest = it;
      }
    }
    if (oldest != idle_.end()) {
      dropped = std::move(oldest->second.front());
      oldest->second.pop_front();
      --idle_total_;
    }
  }
  list.push_back(std::move(connection));
  ++idle_total_;
  if (dropped) dropped->Close();
}

void ConnectionPool::Clear() {
  std::map<std::string, std::deque<std::unique_ptr<UpstreamConnection>>> closing;
  {
    std::lock_guard lock(mu_);
    closing.swap(idle_);
    idle_total_ = 0;
  }
}

std::size_t ConnectionPool::idle_count() const {
  std::lock_guard lock(mu_);
  return idle_total_;
}

void ConnectionPool::EvictExpired() {
  const auto cutoff = std::chrono::steady_clock::now() - limits_.idle_timeout;
  for (auto& [key, list] : idle_) {
    while (!list.empty() && list.front()->idle_since < cutoff) {
      list.front()->Close();
      list.pop_front();
      --idle_total_;
    }
  }
}

}  // namespace hubcache::proxy
