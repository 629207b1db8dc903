#include "store/digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <string>

#include "core/check.h"
#include "core/errc.h"

namespace hubcache::store {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is rejected: the Hub and clients use lower case
}

}  // namespace

Digest::Digest(DigestKind kind, std::span<const std::uint8_t> bytes) : kind_(kind) {
  std::copy(bytes.begin(), bytes.end(), bytes_.begin());
}

Result<Digest> Digest::Parse(DigestKind kind, std::string_view hex) {
  if (kind != DigestKind::kSha256 && kind != DigestKind::kGitSha1) {
    return Fail(core::Errc::kInvalidArgument);
  }
  const std::size_t size = ByteSize(kind);
  if (hex.size() != size * 2) return Fail(core::Errc::kInvalidArgument);
  std::array<std::uint8_t, 32> bytes{};
  for (std::size_t i = 0; i < size; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Fail(core::Errc::kInvalidArgument);
    bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return Digest(kind, {bytes.data(), size});
}

Result<Digest> Digest::ParseHex(std::string_view hex) {
  if (hex.size() == 64) return Parse(DigestKind::kSha256, hex);
  if (hex.size() == 40) return Parse(DigestKind::kGitSha1, hex);
  return Fail(core::Errc::kInvalidArgument);
}

Digest Digest::FromBytes(DigestKind kind, std::span<const std::uint8_t> bytes) {
  Check(bytes.size() == ByteSize(kind), "Digest::FromBytes: wrong byte count");
  return Digest(kind, bytes);
}

std::string Digest::Hex() const {
  std::string out;
  out.reserve(ByteSize(kind_) * 2);
  for (std::uint8_t b : bytes()) {
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 0xf];
  }
  return out;
}

std::string_view Digest::KindName() const {
  return kind_ == DigestKind::kSha256 ? "sha256" : "sha1";
}

struct Hasher::Ctx {
  Ctx() : md(EVP_MD_CTX_new()) { Check(md != nullptr, "EVP_MD_CTX_new failed"); }
  ~Ctx() { EVP_MD_CTX_free(md); }
  EVP_MD_CTX* md;
};

Hasher::Hasher(DigestKind kind, std::uint64_t size) : kind_(kind), ctx_(std::make_unique<Ctx>()) {
  const EVP_MD* md = kind == DigestKind::kSha256 ? EVP_sha256() : EVP_sha1();
  Check(EVP_DigestInit_ex(ctx_->md, md, nullptr) == 1, "EVP_DigestInit_ex failed");
  if (kind == DigestKind::kGitSha1) {
    const std::string header = "blob " + std::to_string(size) + std::string(1, '\0');
    Check(EVP_DigestUpdate(ctx_->md, header.data(), header.size()) == 1,
          "EVP_DigestUpdate failed");
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::span<const std::uint8_t> data) {
  if (data.empty()) return;
  Check(EVP_DigestUpdate(ctx_->md, data.data(), data.size()) == 1, "EVP_DigestUpdate failed");
  bytes_hashed_ += data.size();
}

Digest Hasher::Finish() {
  std::uint8_t out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(ctx_->md, out, &len) == 1, "EVP_DigestFinal_ex failed");
  return Digest::FromBytes(kind_, {out, len});
}

Digest HashBytes(DigestKind kind, std::string_view data) {
  Hasher hasher(kind, data.size());
  hasher.Update(data);
  return hasher.Finish();
}

}  // namespace hubcache::store
