// Parsing of the request paths Hub clients send (HUB_PROTOCOL.md §1.2, §1.3).
//
// Routing happens on the raw, still percent-encoded path: the revision is the
// first raw segment after `/resolve/` and is decoded only after splitting
// (`refs%2Fpr%2F1` → `refs/pr/1`); the rest is the file path, decoded as
// UTF-8 with `+` kept as `+`. Everything is validated before it is used, and
// nothing parsed here ever becomes a filesystem path.
//
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "store/index.h"

namespace hubcache::proxy {

// A file addressed by repo, revision and path.
struct FileRef {
  store::RepoId repo;
  std::string revision;  // decoded: "main", "refs/pr/1", a 40-hex commit...
  std::string path;      // decoded UTF-8, '/'-separated, no "." or ".." segments
};

// `/{[datasets/|spaces/]}{repo}/resolve/{rev}/{path}`. Errors:
// core::Errc::kInvalidArgument when the path is not of that shape or fails
// validation (bad percent-encoding, NUL or control bytes, invalid UTF-8,
// `.`/`..` segments, overlong names); core::Errc::kNotFound when it is not a
// resolve path at all.
Result<FileRef> ParseResolvePath(std::string_view raw_path);

// `/api/resolve-cache/{models|datasets|spaces}/{repo}/{commit}/{path}`; the
// revision must be a 40-hex commit. Errors as ParseResolvePath().
Result<FileRef> ParseResolveCachePath(std::string_view raw_path);

// A repo API request: `/api/{models|datasets|spaces}/{repo}[/{route}[/{rev}[/{rest}]]]`.
struct ApiRef {
  store::RepoId repo;
  std::string route;     // "" (repo info), "revision", "tree", "paths-info", "refs", ...
  std::string revision;  // decoded, for the routes that take one; else ""
  std::string rest;      // decoded remainder after the revision (a tree folder), or ""
};

// Parses a repo API path (no query). A raw `refs/pr/N` or `refs/convert/X`
// revision counts as one (JS sends tree revisions unencoded). Errors:
// core::Errc::kNotFound when it is not a repo API path (whoami-v2, search...);
// core::Errc::kInvalidArgument when it is one but malformed.
Result<ApiRef> ParseApiPath(std::string_view raw_path);

// Percent-decodes `in` (`+` stays `+`); nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view in);

// Percent-encodes for a URL path: unreserved characters stay, and `/` stays
// when `keep_slash`; everything else is %XX.
std::string PercentEncode(std::string_view in, bool keep_slash);

}  // namespace hubcache::proxy
