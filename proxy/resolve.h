// ResolveFile: asks the Hub what a file is at a revision and where its bytes
// are, the way huggingface_hub's metadata HEAD does (HUB_PROTOCOL.md §2).
//
//   HEAD {hub}/{prefix}{repo}/resolve/{rev}/{path}   (no redirects followed)
//   - 302/307 to another origin (LFS via the CDN or Xet bridge): commit from
//     X-Repo-Commit, etag from X-Linked-Etag, size from X-Linked-Size; the
//     bytes are at the (signed, expiring) Location.
//   - relative 307 (regular files, to /api/resolve-cache/...): the same
//     origin is asked again with HEAD; its 200 gives ETag and Content-Length;
//     the bytes are at that URL.
//   - 200 (mirrors that answer directly): ETag and Content-Length; the bytes
//     are at the resolve URL itself.
//   - 3xx on the same origin to the same route of another repo (a renamed
//     repo: `/org/old/resolve/...` → `/org/new/resolve/...`): not followed;
//     the answer comes back with `moved_to`, for the client to follow, so
//     nothing is learned (or cached) under the old name.
//   - anything else: the answer is returned as is (status, X-Error-Code,
//     X-Error-Message, X-Repo-Commit) for the proxy to relay.
// The token goes with both HEADs (same origin), never to the CDN.
//
// Executor: the caller's; `client` must outlive the call.
#pragma once

#include <cstdint>
#include <string>

#include "core/asio.h"
#include "core/result.h"
#include "core/secret.h"
#include "proxy/hub_client.h"

namespace hubcache::proxy {

struct ResolvedFile {
  // 200 when the file was found; otherwise the Hub's refusal in `head`.
  unsigned status = 0;
  ResponseHead head;         // the last answer (for relaying errors and extra headers)
  std::string commit;        // 40 lower-case hex
  std::string etag;          // content digest hex: sha256 (LFS) or git blob sha1
  bool lfs = false;
  std::uint64_t size = 0;
  std::string download_url;  // absolute URL to GET the bytes from
  // A renamed repo: the Location of the Hub's redirect (`status` is its
  // 3xx), as the Hub sent it.
  std::string moved_to;
};

// The answers are read by proxy/resolve_head.h.
// Errors: transport errors; Errc::kBadRedirect for a redirect without
// Location; core::Errc::kCorrupt when a 2xx/3xx answer lacks X-Repo-Commit,
// the etag or the size (a broken or lying upstream).
net::awaitable<Result<ResolvedFile>> ResolveFile(HubClient& client, std::string resolve_url,
                                                 Secret token);

}  // namespace hubcache::proxy
