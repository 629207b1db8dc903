// ClusterKey: the shared secret of a cluster, and how requests between its
// nodes are signed with it (DESIGN.md "P2P", "Trust").
//
// Every cluster request carries three headers:
//   X-Hubcache-Node       the sender's cluster address (host:port)
//   X-Hubcache-Time       the sender's clock, Unix seconds
//   X-Hubcache-Signature  hex HMAC-SHA256 under the secret of
//                         "hubcache-cluster-v1\n" METHOD "\n" TARGET "\n"
//                         hex(SHA-256(body)) "\n" TIME "\n" NODE
// The receiver recomputes it, compares in constant time, and refuses a time
// more than `max_skew` away from its own clock, so a captured request can be
// replayed only within that window (the cluster API's effects are idempotent:
// announcing a holding twice, fetching a .torrent twice).
//
// BitTorrent tracker announces come from libtorrent, which cannot sign them;
// they carry the passkey (an HMAC of a fixed label) in the URL path instead,
// as private trackers do. Neither the secret nor anything that reveals it is
// ever logged.
//
// A user's token that must reach another node (a leader fetching a gated
// file for a follower's client) travels sealed: see Seal.
//
// Thread safety: immutable after construction; every method is thread-safe.
// No Asio here: the request parser can be fuzzed without it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/secret.h"

namespace hubcache::p2p {

inline constexpr std::string_view kNodeHeader = "X-Hubcache-Node";
inline constexpr std::string_view kTimeHeader = "X-Hubcache-Time";
inline constexpr std::string_view kSignatureHeader = "X-Hubcache-Signature";

// Why a request was refused; each has a line in the log of the refusing node.
enum class AuthVerdict {
  kOk,
  kUnsigned,      // a header is missing: a node without the secret, or not a node
  kMalformed,     // a header is not what a node sends (time not a number, node empty)
  kBadSignature,  // signed with another secret, or the request was altered
  kClockSkew,     // signed too long ago or in the future: replay, or clocks apart
};
std::string_view AuthVerdictText(AuthVerdict verdict);

struct SignedHeaders {
  std::string node;
  std::string time;
  std::string signature;
};

class ClusterKey {
 public:
  // At least this many bytes of secret.
  static constexpr std::size_t kMinSecretBytes = 16;

  // Reads the secret from `path`; trailing newlines and spaces are dropped.
  // Errors: the file's system error; core::Errc::kInvalidArgument when it
  // holds fewer than kMinSecretBytes.
  static Result<ClusterKey> FromFile(const std::filesystem::path& path);
  // REQUIRES: secret.size() >= kMinSecretBytes.
  explicit ClusterKey(Secret secret);

  SignedHeaders Sign(std::string_view method, std::string_view target, std::string_view body,
                     std::string_view node, std::int64_t unix_seconds) const;

  AuthVerdict Verify(std::string_view method, std::string_view target, std::string_view body,
                     const SignedHeaders& headers, std::int64_t now_unix_seconds,
                     std::chrono::seconds max_skew) const;

  // Seals `value` (a user's token) for one use named by `context` (the
  // file it may fetch): AES-256-GCM under a key derived from the secret,
  // `context` authenticated alongside, a fresh random nonce. Returns hex of
  // nonce ‖ ciphertext ‖ tag. Only a node with the secret can open it, and
  // only for the same context.
  std::string Seal(const Secret& value, std::string_view context) const;
  // Errors: core::Errc::kInvalidArgument when `sealed` is not hex of a
  // sealed value, or was sealed under another key or context, or altered.
  Result<Secret> Open(std::string_view sealed, std::string_view context) const;

  // The tracker passkey: 32 hex characters, the same on every node.
  const std::string& passkey() const { return passkey_; }
  // True when `candidate` is the passkey (constant time).
  bool IsPasskey(std::string_view candidate) const;

 private:
  std::string Mac(std::string_view message) const;

  Secret secret_;
  std::string passkey_;
  std::string seal_key_;  // raw 32 bytes, derived from the secret
};

}  // namespace hubcache::p2p
