// `hubcache prefetch`: downloads repo revisions into the cache ahead of use.
//
// With --cluster (or --replicas N), on a cluster node: the members and their
// client endpoints come from this node's cluster API; each chosen node runs
// the same prefetch through its own endpoint at the same time, so each blob
// comes from the Hub once (one fetch per cluster) and every node ends with
// the metadata and blobs it needs offline. The summary says, per revision,
// which nodes hold every file and which do not, and why, and how many bytes
// the nodes took from the Hub in all.
//
// Everything goes through a hubcache HTTP endpoint, exactly as a client's
// download would: with --endpoint, a running daemon (sharing its store and
// coalescing with its clients); without, a private service this process runs
// on 127.0.0.1 over the cache directory (refused while a daemon holds it).
// For each revision it asks for what offline serving needs — the repo info at
// the revision and at its commit, the repo's refs listing (every branch and
// tag), the recursive tree at the commit (every page), the ref (by resolving
// one file at the revision) — then every file
// at the commit: a HEAD says whether the blob is cached already (X-Cache),
// and a GET fetches it otherwise. The daemon verifies every byte before it
// sends the last one, so a complete body means a cached, verified blob.
// Re-running after an interruption skips what is cached.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "core/secret.h"
#include "store/catalog.h"

namespace hubcache::daemon {

struct PrefetchRequest {
  std::vector<store::RepoSpec> targets;  // an empty revision means main
  std::vector<std::string> include;      // globs (fnmatch, `*` crosses `/`); none: all
  std::vector<std::string> exclude;
  Secret token;
  std::string endpoint;  // a running hubcache; empty: a private service
  unsigned jobs = 4;     // files in flight
  // A cluster preheat (run on a node, with its configuration): every live
  // member, or with `replicas` > 0 the first `replicas` members in each
  // file's rendezvous order, prefetches through its own endpoint; the cluster
  // fetches each blob from the Hub once and the nodes stream it from there.
  bool cluster = false;
  unsigned replicas = 0;
};

// Exit code: 0 when every selected file of every target is cached and
// verified (on every node it was meant for, and every member is alive), 1
// otherwise (with a summary of what failed, where and why).
int Prefetch(const config::Loaded& loaded, const PrefetchRequest& request);

// Parses a --from-file list: `repo[@rev]` per line, `#` comments and blank
// lines ignored. Errors name the line.
tl::expected<std::vector<store::RepoSpec>, std::string> ParseTargetList(
    std::string_view text, std::optional<store::RepoType> type);

}  // namespace hubcache::daemon
