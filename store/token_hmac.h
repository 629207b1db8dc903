// TokenHmac: turns an HF token into the id under which grants are stored.
//
// Tokens are never stored. The index keys grants by HMAC-SHA256 of the token
// under a per-install secret: 32 random bytes in `<cache_dir>/secret`
// (mode 0600), created on first use. Without the secret file, the ids in the
// index cannot be tested against guessed tokens.
//
// Thread safety: immutable after LoadOrCreate(); Of() is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>

#include "core/result.h"
#include "core/secret.h"
#include "store/index.h"

namespace hubcache::store {

class TokenHmac {
 public:
  static constexpr const char* kFileName = "secret";

  // Reads the secret from `cache_dir`, creating it if absent. Errors: system
  // errors; core::Errc::kCorrupt if the file exists with the wrong size.
  static Result<TokenHmac> LoadOrCreate(const std::filesystem::path& cache_dir);

  // HMAC-SHA256(secret, token).
  TokenId Of(const Secret& token) const;

 private:
  explicit TokenHmac(const std::array<std::uint8_t, 32>& key) : key_(key) {}
  std::array<std::uint8_t, 32> key_;
};

}  // namespace hubcache::store
