// Directory: what a blob's leader knows of who holds it (DESIGN.md "P2P").
//
// Holders announce the blobs they hold to each blob's leader (and withdraw
// them before eviction); nodes that start fetching a blob are recorded for a
// while too, so that the nodes of one wave find each other and share pieces
// instead of all pulling from the first holder. The directory keeps no
// liveness: callers filter the answers by the live members, so a node that
// dies drops out at once and comes back with its holdings when it returns.
// A new leader (the old one died or a node joined) starts empty and learns
// from the holders' periodic announcements.
//
// Thread safety: every method is thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace hubcache::p2p {

class Directory {
 public:
  // A fetching record lasts this long unless renewed or turned into a holding.
  static constexpr std::chrono::minutes kFetchingTtl{10};

  void Hold(const std::string& hex, const std::string& node);
  void Drop(const std::string& hex, const std::string& node);
  // `node` started fetching `hex`.
  void Fetching(const std::string& hex, const std::string& node);
  // Every record of `node` (it announced its full list again).
  void ForgetNode(const std::string& node);

  struct Found {
    std::vector<std::string> holders;
    std::vector<std::string> fetching;
  };
  Found Find(const std::string& hex) const;
  // Blobs with at least one record.
  std::size_t size() const;

 private:
  struct Record {
    std::map<std::string, bool> holders;  // node → true
    std::map<std::string, std::chrono::steady_clock::time_point> fetching;
  };
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;  // GUARDED_BY(mu_)
};

}  // namespace hubcache::p2p
