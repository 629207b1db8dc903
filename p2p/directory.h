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
#include <optional>
#include <string>
#include <string_view>
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

// A blob digest as the cluster API writes it: 64 (SHA-256) or 40 (git
// blob id) lower-case hex characters.
bool IsHexDigest(std::string_view hex);

// The body of POST /_cluster/v1/hold and /drop: {"digests": [hex...]}, and
// for hold "full": true when it lists every blob the node holds. nullopt
// when it is not such a body (not JSON, a digest that is not one).
struct Holdings {
  std::vector<std::string> digests;
  bool full = false;
};
std::optional<Holdings> ParseHoldings(std::string_view body);

}  // namespace hubcache::p2p
