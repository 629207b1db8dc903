#include "proxy/access.h"

#include <chrono>
#include <limits>

#include "core/clock.h"

namespace hubcache::proxy {
namespace {

// The expiry recorded for a grant the Hub has refused: earlier than any
// expiry plus offline extension can reach back (and no overflow when the
// extension is added).
constexpr std::int64_t kRevoked = std::numeric_limits<std::int64_t>::min();

std::int64_t Seconds(Duration d) {
  return std::chrono::duration_cast<std::chrono::seconds>(d).count();
}

}  // namespace

AccessPolicy::AccessPolicy(store::Index& index, store::TokenHmac hmac, AccessOptions options,
                           Clock now)
    : index_(index), hmac_(hmac), now_(std::move(now)) {
  SetOptions(options);
}

void AccessPolicy::SetOptions(const AccessOptions& options) {
  public_ttl_s_.store(Seconds(options.public_ttl));
  grant_ttl_s_.store(Seconds(options.grant_ttl));
  offline_grant_ttl_s_.store(Seconds(options.offline_grant_ttl));
}

std::int64_t AccessPolicy::Now() const {
  if (now_) return now_();
  return core::UnixSeconds();
}

bool AccessPolicy::Allows(const store::RepoId& repo, const Secret& token, bool offline) const {
  const std::int64_t now = Now();
  auto access = index_.GetAccess(repo);
  if (access && *access && (*access)->visibility == store::Visibility::kPublic &&
      (offline || now - (*access)->checked_at < public_ttl_s_.load())) {
    return true;
  }
  if (token.empty()) return false;
  auto grant = index_.GetGrant(hmac_.Of(token), repo);
  if (!grant || !*grant) return false;
  const std::int64_t expires = **grant + (offline ? offline_grant_ttl_s_.load() : 0);
  return now < expires;
}

Result<void> AccessPolicy::RecordSuccess(const store::RepoId& repo, const Secret& token) {
  if (token.empty()) {
    return index_.PutAccess(repo, {.visibility = store::Visibility::kPublic, .checked_at = Now()});
  }
  return index_.PutGrant(hmac_.Of(token), repo, Now() + grant_ttl_s_.load());
}

Result<void> AccessPolicy::RecordRefusal(const store::RepoId& repo, const Secret& token) {
  if (token.empty()) {
    return index_.PutAccess(repo,
                            {.visibility = store::Visibility::kRestricted, .checked_at = Now()});
  }
  // Only a grant that exists is ended: refused tokens (any string a client
  // sends) must not add entries to the index.
  const store::TokenId id = hmac_.Of(token);
  auto grant = index_.GetGrant(id, repo);
  if (!grant) return Fail(grant.error());
  if (!*grant || **grant == kRevoked) return {};
  return index_.PutGrant(id, repo, kRevoked);
}

}  // namespace hubcache::proxy
