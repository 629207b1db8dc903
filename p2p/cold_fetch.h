// ColdFetch: what a node asks a blob's leader when no node holds the blob
// (issue 17, DESIGN.md "Cold start"): fetch it from the Hub once for the
// whole cluster, so that this node can stream it from the leader while it
// arrives.
//
// The request names the blob (digest, size) and the file's resolve path on
// the Hub ("/org/model/resolve/<commit>/model.safetensors"): the leader asks
// its own upstream, never a URL a peer chose, and checks that the Hub's
// answer names the same digest and size before fetching. It carries no user
// token.
//
// No Asio here, so that the parser can be fuzzed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/digest.h"

namespace hubcache::p2p {

struct ColdFetch {
  store::Digest digest;
  std::uint64_t size = 0;
  std::string resolve_path;
  // Nodes the asker could not stream from (it died or stopped mid-way):
  // the leader names another source. At most kMaxExcluded.
  std::vector<std::string> exclude;
  // Leaders the asker could not reach: the receiver leads the blob in their
  // place (the next in rendezvous order) and skips them too. At most
  // kMaxExcluded.
  std::vector<std::string> skip_leaders;
  // For a gated or private file: the requesting client's token, sealed with
  // the cluster key for this digest and path only (ClusterKey::Seal), so the
  // leader can re-check it with the Hub and fetch on its behalf. Empty for
  // public files. Hex, at most kMaxSealedToken characters.
  std::string sealed_token;
};

inline constexpr std::size_t kMaxSealedToken = 2048;

inline constexpr std::size_t kMaxExcluded = 16;

// The leader's answer: where to stream the blob from.
struct ColdSource {
  bool stored = false;  // the leader has it already (committed)
  std::string node;     // the node to stream from; empty: the leader itself
};
std::string ColdSourceJson(const ColdSource& source);
// Errors: core::Errc::kInvalidArgument when `body` is not such an answer.
Result<ColdSource> ParseColdSource(std::string_view body);

// The JSON body of POST /_cluster/v1/fetch.
std::string ColdFetchJson(const ColdFetch& fetch);

// Parses that body. The resolve path must be an absolute path of printable
// ASCII without query, fragment, backslash, empty or dot segments, at most
// 4 KiB; its meaning is checked by the caller (proxy's Hub path parser).
// Errors: core::Errc::kInvalidArgument, for anything else.
Result<ColdFetch> ParseColdFetch(std::string_view body);

}  // namespace hubcache::p2p
