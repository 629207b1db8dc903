// Signer: the CDN's expiring signed URLs, in the shape of the Hub's bridge
// URLs (HUB_PROTOCOL.md §1.7, §6.3): `?response-content-disposition=...&
// Expires=<unix>&Policy=...&Signature=...&Key-Pair-Id=...`.
//
// The signature is an HMAC-SHA256 under a random per-FakeHub key over the
// path and every other parameter, so any edit (path, expiry, disposition)
// is caught. A URL is valid while the current Unix time is below Expires,
// which is at least `ttl` after signing (whole seconds, rounded up; a zero
// ttl gives a URL that is already expired).
//
// Thread safety: immutable after construction; all members are const.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "tests/fakehub/http_util.h"

namespace hubcache::fakehub {

class Signer {
 public:
  Signer();  // draws a random key

  // The query string (without '?') for `path`, valid for `ttl` from now.
  std::string Sign(std::string_view path, std::string_view disposition,
                   std::chrono::seconds ttl) const;

  enum class Verdict { kOk, kMalformed, kBadSignature, kExpired };
  struct Checked {
    Verdict verdict = Verdict::kMalformed;
    std::string disposition;  // kOk only
  };
  Checked Verify(std::string_view path, const Params& query) const;

 private:
  std::string Mac(std::string_view path, std::string_view expires, std::string_view policy,
                  std::string_view key_pair_id, std::string_view disposition) const;
  std::string key_;
};

}  // namespace hubcache::fakehub
