// Digest: the content address of a blob, and the hashers that produce it.
//
// The Hub names file contents two ways (HUB_PROTOCOL.md §2.2):
//   - LFS files by the sha256 of the content (64 lower-case hex);
//   - regular files by their git blob id: sha1 over
//     "blob " + decimal length + "\0" + content (40 lower-case hex).
// A Digest is always one of those, validated at construction: it only comes
// from Parse(), ParseHex() or a Hasher, so every other function can trust it.
//
// Thread safety: Digest is a value type. A Hasher is used by one thread at a
// time.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hubcache::store {

enum class DigestKind : std::uint8_t {
  kSha256 = 1,   // LFS content
  kGitSha1 = 2,  // git blob id of a regular file
};

class Digest {
 public:
  // Parses lower-case hex of the given kind (64 chars for sha256, 40 for
  // git sha1). Errors: core::Errc::kInvalidArgument for any other input,
  // including upper-case hex.
  static Result<Digest> Parse(DigestKind kind, std::string_view hex);
  // Parses lower-case hex, choosing the kind by length (64 or 40).
  static Result<Digest> ParseHex(std::string_view hex);
  // A digest from raw bytes (32 for sha256, 20 for git sha1).
  // REQUIRES: bytes.size() == ByteSize(kind).
  static Digest FromBytes(DigestKind kind, std::span<const std::uint8_t> bytes);

  static constexpr std::size_t ByteSize(DigestKind kind) {
    return kind == DigestKind::kSha256 ? 32 : 20;
  }

  DigestKind kind() const { return kind_; }
  std::span<const std::uint8_t> bytes() const { return {bytes_.data(), ByteSize(kind_)}; }
  // Lower-case hex, as in ETags and file names.
  std::string Hex() const;
  // "sha256" or "sha1": the folder name under blobs/.
  std::string_view KindName() const;

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  Digest(DigestKind kind, std::span<const std::uint8_t> bytes);
  DigestKind kind_ = DigestKind::kSha256;
  std::array<std::uint8_t, 32> bytes_{};  // unused tail stays zero for sha1
};

// Incremental hashing over OpenSSL EVP.
class Hasher {
 public:
  // A hasher for content of `kind`. Git blob ids hash a header that contains
  // the total size, so `size` must be the final content length for
  // kGitSha1 (it is ignored for kSha256).
  Hasher(DigestKind kind, std::uint64_t size);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(std::span<const std::uint8_t> data);
  void Update(std::string_view data) {
    Update({reinterpret_cast<const std::uint8_t*>(data.data()), data.size()});
  }
  // Bytes passed to Update() so far (not counting the git header).
  std::uint64_t bytes_hashed() const { return bytes_hashed_; }
  // The digest of everything passed to Update(). The hasher is spent after.
  Digest Finish();

 private:
  struct Ctx;
  DigestKind kind_;
  std::unique_ptr<Ctx> ctx_;
  std::uint64_t bytes_hashed_ = 0;
};

// One-shot helpers.
Digest HashBytes(DigestKind kind, std::string_view data);

}  // namespace hubcache::store

template <>
struct std::hash<hubcache::store::Digest> {
  std::size_t operator()(const hubcache::store::Digest& d) const noexcept {
    // Digests are uniformly distributed; the first 8 bytes are a fine hash.
    std::size_t h = 0;
    for (std::size_t i = 0; i < sizeof(h); ++i) h = (h << 8) | d.bytes()[i];
    return h ^ static_cast<std::size_t>(d.kind());
  }
};
