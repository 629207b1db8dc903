#include "tests/fakehub/signer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>

#include <fmt/format.h>

#include "core/check.h"

namespace hubcache::fakehub {
namespace {

constexpr std::string_view kKeyPairId = "K3RPWS32NSSJCE";

std::int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Signer::Signer() : key_(32, '\0') {
  Check(
      RAND_bytes(reinterpret_cast<unsigned char*>(key_.data()), static_cast<int>(key_.size())) == 1,
      "RAND_bytes failed");
}

std::string Signer::Mac(std::string_view path, std::string_view expires, std::string_view policy,
                        std::string_view key_pair_id, std::string_view disposition) const {
  const std::string message =
      fmt::format("{}\n{}\n{}\n{}\n{}", path, expires, policy, key_pair_id, disposition);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  Check(HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
             &n) != nullptr,
        "HMAC failed");
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(out), n));
}

std::string Signer::Sign(std::string_view path, std::string_view disposition,
                         std::chrono::seconds ttl) const {
  // Expires is in whole seconds: round up, so a URL lives at least `ttl`;
  // a zero ttl rounds down, so the URL is expired on arrival.
  const std::int64_t now_ms = UnixMillis();
  const std::int64_t expires_s =
      ttl.count() > 0 ? (now_ms + ttl.count() * 1000 + 999) / 1000 : now_ms / 1000;
  const std::string expires = std::to_string(expires_s);
  const std::string policy = Base64UrlEncode(fmt::format(
      R"({{"Statement":[{{"Resource":"*{}*","Condition":{{"DateLessThan":{{"AWS:EpochTime":{}}}}}}}]}})",
      path, expires));
  const std::string signature = Mac(path, expires, policy, kKeyPairId, disposition);
  return fmt::format(
      "response-content-disposition={}&Expires={}&Policy={}&Signature={}&Key-Pair-Id={}",
      PercentEncode(disposition, false), expires, policy, signature, kKeyPairId);
}

Signer::Checked Signer::Verify(std::string_view path, const Params& query) const {
  Checked out;
  const auto disposition = Param(query, "response-content-disposition");
  const auto expires = Param(query, "Expires");
  const auto policy = Param(query, "Policy");
  const auto signature = Param(query, "Signature");
  const auto key_pair_id = Param(query, "Key-Pair-Id");
  if (!disposition || !expires || !policy || !signature || !key_pair_id) return out;
  std::int64_t when = 0;
  const auto [end, ec] = std::from_chars(expires->data(), expires->data() + expires->size(), when);
  if (ec != std::errc() || end != expires->data() + expires->size()) return out;
  const std::string expected = Mac(path, *expires, *policy, *key_pair_id, *disposition);
  if (expected.size() != signature->size() ||
      CRYPTO_memcmp(expected.data(), signature->data(), expected.size()) != 0) {
    out.verdict = Verdict::kBadSignature;
    return out;
  }
  if (UnixMillis() >= when * 1000) {
    out.verdict = Verdict::kExpired;
    return out;
  }
  out.verdict = Verdict::kOk;
  out.disposition = *disposition;
  return out;
}

}  // namespace hubcache::fakehub
