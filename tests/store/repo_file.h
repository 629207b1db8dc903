// A file of a repo as tests write it by hand into a bundle or an HF cache:
// its path, its bytes, and whether the Hub keeps it in LFS (which decides
// its digest: sha256, or the git blob id).
#pragma once

#include <string>

#include "store/digest.h"

namespace hubcache::testing {

struct RepoFile {
  std::string path;
  std::string content;
  bool lfs = false;
  store::Digest digest() const {
    return store::HashBytes(lfs ? store::DigestKind::kSha256 : store::DigestKind::kGitSha1, content);
  }
};

}  // namespace hubcache::testing
