// Inspecting and pruning the cache: `hubcache ls`, `rm`, `pin`, `unpin`.
//
// `ls`, `pin` and `unpin` work on the index alone (LMDB allows several
// processes), so they also work while a daemon serves from the same cache
// directory. `rm` deletes blob files and refuses while a daemon holds the
// directory, like `gc` and `verify`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "store/catalog.h"

namespace hubcache::daemon {

// Repos with their revisions, file counts, bytes and last access; with
// `repo`, that repo's files per commit. Exit code.
int Ls(const config::Loaded& loaded, const std::optional<store::RepoSpec>& repo, bool json);
int Rm(const config::Loaded& loaded, const store::RepoSpec& spec);
// Pins the files of REPO@REV (every cached commit of REPO without a revision)
// so that eviction keeps them.
int Pin(const config::Loaded& loaded, const store::RepoSpec& spec);
// Removes the pin of REPO@REV, or every pin of REPO.
int Unpin(const config::Loaded& loaded, const store::RepoSpec& spec);

// `hubcache export REPO[@REV]... [--out DIR] [--hf-cache DIR]`: a bundle
// and/or a huggingface_hub client cache. Reads only; works beside a daemon.
int Export(const config::Loaded& loaded, const std::vector<store::RepoSpec>& specs,
           const std::string& out, const std::string& hf_cache);
// `hubcache import DIR` (a bundle) or `hubcache import --hf-cache DIR`.
int Import(const config::Loaded& loaded, const std::string& dir, bool hf_cache,
           bool mark_public);

}  // namespace hubcache::daemon
