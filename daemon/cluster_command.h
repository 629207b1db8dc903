// `hubcache cluster status`: asks this node's cluster API (signed with the
// secret in cluster.secret_file) for members, liveness, leader share, per-peer
// traffic and swarms, and prints them for a person (or as JSON).
#pragma once

#include <string>

#include <tl/expected.hpp>

#include "config/config.h"

namespace hubcache::daemon {

// GET /_cluster/v1/status of this node (cluster.listen), signed with the
// secret in cluster.secret_file: a JSON object with a "members" array.
// Errors: a message for a person (no [cluster], no secret, no answer).
tl::expected<std::string, std::string> FetchClusterStatus(const p2p::ClusterOptions& cluster);

// Exit codes: 0 when every member is alive, 1 when some member is down or
// refuses this node, or the node cannot be reached; 2 without [cluster].
int ClusterStatus(const config::Loaded& loaded, bool json);

}  // namespace hubcache::daemon
