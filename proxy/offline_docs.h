// Offline answers to repo API requests that were never asked in exactly
// this form, built from what the index holds at the commit.
//
// A cached API document is keyed by its exact request, but clients vary the
// request: huggingface.js asks for repo info with its own `expand=` list and
// at a branch, sends one paths-info POST per file, lists trees at a branch
// and not recursively. When hubcache cannot ask the Hub (offline, or the Hub
// unreachable), these are answered from the documents `hubcache prefetch`
// (or an imported bundle) stores at the commit:
//   repo info, any query, at a branch/tag/HEAD/commit → the repo info stored
//       at the commit (`GET .../revision/<commit>`), a superset of any expand;
//   tree at any revision, path, recursive or not → filtered from the
//       recursive listing at the commit (all its pages);
//   paths-info → the listing's entries for the asked paths.
// The revision is mapped to its commit with the refs table, else the stored
// refs listing (proxy/offline_refs.h); `HEAD` and the bare repo path mean
// `main`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/hub_path.h"
#include "store/index.h"

namespace hubcache::proxy {

// The JSON body answering `api` (query without `?`, and for paths-info the
// request's content type and body), or nullopt when the index does not hold
// what it takes.
std::optional<std::string> SynthesizeApiAnswer(const store::Index& index, const ApiRef& api,
                                               std::string_view query,
                                               std::string_view content_type,
                                               std::string_view body);

// Whether the recursive listing stored at `commit` (every page) lists `path`
// as a file; nullopt when no complete listing is stored. Lets an offline
// hubcache answer 404 EntryNotFound, as the Hub would, for a file a client
// probes that the revision does not have (transformers probes optional files).
std::optional<bool> StoredTreeHasFile(const store::Index& index, const store::RepoId& repo,
                                      const std::string& commit, std::string_view path);

}  // namespace hubcache::proxy
