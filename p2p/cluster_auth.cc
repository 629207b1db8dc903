#include "p2p/cluster_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <memory>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "core/errc.h"

namespace hubcache::p2p {
namespace {

constexpr std::string_view kLabel = "hubcache-cluster-v1";

std::string Hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Check(EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) == 1,
        "SHA-256 failed");
  return Hex(digest, size);
}

bool FromHex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.clear();
  out.reserve(hex.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi << 4 | lo);
  }
  return true;
}

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string_view AuthVerdictText(AuthVerdict verdict) {
  switch (verdict) {
    case AuthVerdict::kOk: return "ok";
    case AuthVerdict::kUnsigned: return "the request is not signed (a node without the cluster secret?)";
    case AuthVerdict::kMalformed: return "the signature headers are malformed";
    case AuthVerdict::kBadSignature:
      return "the signature does not match (a node with another cluster secret?)";
    case AuthVerdict::kClockSkew: return "the request's time is too far from this node's clock";
  }
  return "unknown";
}

Result<ClusterKey> ClusterKey::FromFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode(errno != 0 ? errno : ENOENT, boost::system::generic_category()));
  std::ostringstream content;
  content << in.rdbuf();
  std::string secret = content.str();
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' ||
                             secret.back() == ' ' || secret.back() == '\t')) {
    secret.pop_back();
  }
  if (secret.size() < kMinSecretBytes) return Fail(core::Errc::kInvalidArgument);
  return ClusterKey(Secret(std::move(secret)));
}

ClusterKey::ClusterKey(Secret secret) : secret_(std::move(secret)) {
  Check(secret_.Reveal().size() >= kMinSecretBytes, "cluster secret too short");
  passkey_ = Mac("hubcache-tracker-passkey-v1").substr(0, 32);
  Check(FromHex(Mac("hubcache-token-seal-v1"), seal_key_) && seal_key_.size() == 32,
        "seal key derivation failed");
}

std::string ClusterKey::Seal(const Secret& value, std::string_view context) const {
  const std::string& plain = value.Reveal();
  std::string out(kNonceBytes + plain.size() + kTagBytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  Check(RAND_bytes(bytes, kNonceBytes) == 1, "no random bytes for a nonce");
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  Check(ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(seal_key_), bytes) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(context),
                              static_cast<int>(context.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), bytes + kNonceBytes, &len, Bytes(plain),
                              static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), bytes + kNonceBytes + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                                bytes + kNonceBytes + plain.size()) == 1,
        "AES-256-GCM failed");
  return Hex(bytes, out.size());
}

Result<Secret> ClusterKey::Open(std::string_view sealed, std::string_view context) const {
  std::string raw;
  if (!FromHex(sealed, raw) || raw.size() < kNonceBytes + kTagBytes) {
    return Fail(core::Errc::kInvalidArgument);
  }
  const auto* bytes = Bytes(raw);
  const std::size_t size = raw.size() - kNonceBytes - kTagBytes;
  std::string plain(size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  std::string tag = raw.substr(kNonceBytes + size);
  CipherContext ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  const bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(seal_key_), bytes) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(context), static_cast<int>(context.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), out, &len, bytes + kNonceBytes, static_cast<int>(size)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) == 1;
  if (!ok) return Fail(core::Errc::kInvalidArgument);
  return Secret(std::move(plain));
}

std::string ClusterKey::Mac(std::string_view message) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t size = 0;
  const std::string& key = secret_.Reveal();
  Check(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                  reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
                  sizeof(mac), &size) != nullptr,
        "HMAC-SHA256 failed");
  return Hex(mac, size);
}

SignedHeaders ClusterKey::Sign(std::string_view method, std::string_view target,
                               std::string_view body, std::string_view node,
                               std::int64_t unix_seconds) const {
  SignedHeaders out{.node = std::string(node), .time = std::to_string(unix_seconds), .signature = {}};
  std::string message;
  message.reserve(kLabel.size() + method.size() + target.size() + node.size() + 100);
  message.append(kLabel).append("\n").append(method).append("\n").append(target).append("\n");
  message.append(Sha256Hex(body)).append("\n").append(out.time).append("\n").append(node);
  out.signature = Mac(message);
  return out;
}

AuthVerdict ClusterKey::Verify(std::string_view method, std::string_view target,
                               std::string_view body, const SignedHeaders& headers,
                               std::int64_t now_unix_seconds,
                               std::chrono::seconds max_skew) const {
  if (headers.node.empty() || headers.time.empty() || headers.signature.empty()) {
    return AuthVerdict::kUnsigned;
  }
  std::int64_t time = 0;
  const char* end = headers.time.data() + headers.time.size();
  auto [ptr, ec] = std::from_chars(headers.time.data(), end, time);
  if (ec != std::errc() || ptr != end || headers.node.size() > 300 ||
      headers.signature.size() != 64) {
    return AuthVerdict::kMalformed;
  }
  const SignedHeaders expected = Sign(method, target, body, headers.node, time);
  if (!ConstantTimeEqual(expected.signature, headers.signature)) return AuthVerdict::kBadSignature;
  const std::int64_t skew = now_unix_seconds > time ? now_unix_seconds - time : time - now_unix_seconds;
  if (skew > max_skew.count()) return AuthVerdict::kClockSkew;
  return AuthVerdict::kOk;
}

bool ClusterKey::IsPasskey(std::string_view candidate) const {
  return ConstantTimeEqual(candidate, passkey_);
}

}  // namespace hubcache::p2p
