// Offline refs: which commit a branch or tag names when hubcache cannot ask
// the Hub, beyond the revisions clients happened to ask for.
//
// The refs table holds the revisions that were resolved through hubcache
// (and the one `hubcache prefetch` fetched). `hubcache prefetch` also stores
// the Hub's refs listing (`GET /api/{type}s/{repo}/refs`: every branch, tag
// and convert with its commit) as an API document of the repo (revision
// "@"), and bundles carry it to other stores. Offline, a revision the refs
// table does not know is looked up in that listing:
//   - it names a commit the store holds (files or API documents at it): the
//     revision is served as that commit, so a tag on the prefetched commit
//     works like the branch that was prefetched;
//   - it names a commit the store does not hold: hubcache answers as the Hub
//     does for a revision it does not have (RevisionNotFoundAnswer), so a
//     client fails at once instead of retrying an answer that cannot come;
//   - it is not listed: unknown, as before (a clear 503).
// See README.md, "Air-gapped site".
//
// Reads only; thread-safe (the index is).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/index.h"

namespace hubcache::proxy {

// The commit the stored refs listing of `repo` gives `revision`: a branch or
// tag name (branches first, as the Hub resolves them), a full ref
// (`refs/heads/main`, `refs/tags/v1.0`, `refs/convert/parquet`, `refs/pr/1`
// when the listing has pull requests), or `HEAD` for main. nullopt when no
// listing is stored, it does not list the revision, or it does not parse.
std::optional<std::string> ListedCommit(const store::Index& index, const store::RepoId& repo,
                                        std::string_view revision);

// Whether the index holds anything at `commit` of `repo`: a file record or an
// API document.
bool CommitStored(const store::Index& index, const store::RepoId& repo, std::string_view commit);

// True when `revision` is a listed branch or tag whose commit the store does
// not hold: offline, the Hub's answer for a missing revision applies.
bool ListedButNotStored(const store::Index& index, const store::RepoId& repo,
                        std::string_view revision);

// The Hub's answer for a revision it does not have (HUB_PROTOCOL.md §3.2):
// status 404, and the headers X-Error-Code: RevisionNotFound and
// X-Error-Message: "Invalid rev id: <revision>" (also the JSON body's error).
struct RevisionNotFoundAnswer {
  explicit RevisionNotFoundAnswer(std::string_view revision);
  unsigned status = 404;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace hubcache::proxy
