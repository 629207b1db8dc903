// libFuzzer target: the cluster API's request bodies a node parses from
// another node: a cold fetch asked of a leader and the leader's answer
// (p2p/cold_fetch.h), and the holdings a node announces to a leader
// (p2p/directory.h). Whatever parses is within its bounds and survives a
// round trip through the JSON a node sends.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "p2p/cold_fetch.h"
#include "p2p/directory.h"
#include "tests/fuzz/require.h"

namespace p2p = hubcache::p2p;

using hubcache::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto ask = p2p::ParseColdFetch(text)) {
    Require(ask->size > 0);
    Require(!ask->resolve_path.empty() && ask->resolve_path.front() == '/');
    Require(ask->resolve_path.find("/../") == std::string::npos);
    Require(ask->exclude.size() <= p2p::kMaxExcluded);
    Require(ask->skip_leaders.size() <= p2p::kMaxExcluded);
    Require(ask->sealed_token.size() <= p2p::kMaxSealedToken);
    auto again = p2p::ParseColdFetch(p2p::ColdFetchJson(*ask));
    Require(again && again->digest == ask->digest && again->size == ask->size &&
            again->resolve_path == ask->resolve_path && again->exclude == ask->exclude &&
            again->skip_leaders == ask->skip_leaders && again->sealed_token == ask->sealed_token);
  }
  if (auto source = p2p::ParseColdSource(text)) {
    auto again = p2p::ParseColdSource(p2p::ColdSourceJson(*source));
    Require(again && again->stored == source->stored && again->node == source->node);
  }
  if (auto holdings = p2p::ParseHoldings(text)) {
    for (const std::string& hex : holdings->digests) Require(p2p::IsHexDigest(hex));
  }
  return 0;
}
