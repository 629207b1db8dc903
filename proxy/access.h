// AccessPolicy: whether a request may read a repo's cached content
// (DESIGN.md "Access policy").
//
//   public      an anonymous upstream request for a file of the repo succeeded
//               within access.public_ttl: anyone may read.
//   restricted  everything else: the request's own token must hold a grant,
//               recorded when the Hub answered that token with success,
//               valid for access.grant_ttl. Grants are keyed by an HMAC of the
//               token (store/token_hmac.h); the token is never stored.
//   offline     public facts never expire; a grant is honoured until its
//               expiry plus access.offline_grant_ttl, unless the Hub refused
//               the token since.
//
// Only file resolves (the Hub's HEAD on /resolve/) create facts: a gated
// repo's info is readable by anyone, its files are not.
//
// Check() reads the index (cheap, any thread); Record*() write it and block
// until durable, so callers run them off the event loop.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "core/clock.h"
#include "core/secret.h"
#include "proxy/options.h"
#include "store/index.h"
#include "store/token_hmac.h"

namespace hubcache::proxy {

class AccessPolicy {
 public:
  using Clock = core::Clock;  // unix seconds (core/clock.h)
  AccessPolicy(store::Index& index, store::TokenHmac hmac, AccessOptions options,
               Clock now = {});

  // True when the cache alone allows reading `repo` with `token` (empty:
  // anonymous). False means: ask the Hub (online) or refuse (offline).
  bool Allows(const store::RepoId& repo, const Secret& token, bool offline) const;

  // The Hub answered a file request for `repo` made with `token` with
  // success: anonymous marks the repo public, a token gets a grant.
  Result<void> RecordSuccess(const store::RepoId& repo, const Secret& token);
  // New TTLs (SIGHUP reload); takes effect for the next check.
  void SetOptions(const AccessOptions& options);

  // The Hub refused a file request for `repo` made with `token` (401, 403,
  // or 404 RepoNotFound). Anonymous: the repo is restricted from now on (a
  // cached public fact stops applying at once). A token: its grant for the
  // repo ends now, and no offline extension revives it; the extension covers
  // an outage, not a refusal the Hub has already given.
  Result<void> RecordRefusal(const store::RepoId& repo, const Secret& token);

 private:
  std::int64_t Now() const;

  store::Index& index_;
  const store::TokenHmac hmac_;
  const Clock now_;
  // The TTLs of AccessOptions in seconds, replaced by SetOptions().
  std::atomic<std::int64_t> public_ttl_s_;
  std::atomic<std::int64_t> grant_ttl_s_;
  std::atomic<std::int64_t> offline_grant_ttl_s_;
};

}  // namespace hubcache::proxy
