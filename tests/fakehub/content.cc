#include "tests/fakehub/content.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "core/check.h"
#include "store/digest.h"

namespace hubcache::fakehub {
namespace {

static_assert(std::endian::native == std::endian::little,
              "generated content is defined as little-endian words");

// splitmix64's output function over a counter: word `index` of stream `key`.
inline std::uint64_t Word(std::uint64_t key, std::uint64_t index) {
  std::uint64_t z = key + (index + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Spreads small seeds (0, 1, 2...) over the key space so neighbouring seeds
// do not produce shifted copies of the same stream.
inline std::uint64_t StreamKey(std::uint64_t seed) { return Word(0x5eedf00dcafe1234ULL, seed); }

std::string DigestHex(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  Check(EVP_Digest(data.data(), data.size(), out, &n, md, nullptr) == 1, "EVP_Digest failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned int i = 0; i < n; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 0xf];
  }
  return hex;
}

struct Digests {
  std::optional<std::string> sha256;
  std::optional<std::string> git_sha1;
};

// Memo of the digests of generated content, keyed by (seed, size): a pure
// function, so sharing it across FakeHub instances of one process is safe.
std::mutex memo_mu;
std::map<std::pair<std::uint64_t, std::uint64_t>, Digests>& Memo() {
  static std::map<std::pair<std::uint64_t, std::uint64_t>, Digests> memo;
  return memo;
}

}  // namespace

void FillGenerated(std::uint64_t seed, std::uint64_t offset, std::span<char> out) {
  const std::uint64_t key = StreamKey(seed);
  std::uint64_t index = offset / 8;
  std::size_t skip = offset % 8;
  char* p = out.data();
  std::size_t left = out.size();
  if (skip != 0 && left > 0) {
    const std::uint64_t w = Word(key, index++);
    const std::size_t n = std::min<std::size_t>(8 - skip, left);
    std::memcpy(p, reinterpret_cast<const char*>(&w) + skip, n);
    p += n;
    left -= n;
  }
  while (left >= 8) {
    const std::uint64_t w = Word(key, index++);
    std::memcpy(p, &w, 8);
    p += 8;
    left -= 8;
  }
  if (left > 0) {
    const std::uint64_t w = Word(key, index);
    std::memcpy(p, &w, left);
  }
}

std::string Sha1Hex(std::string_view data) { return DigestHex(EVP_sha1(), data); }

std::string Sha256Hex(std::string_view data) { return DigestHex(EVP_sha256(), data); }

std::shared_ptr<Content> Content::Text(std::string text) {
  std::shared_ptr<Content> c(new Content());
  c->size_ = text.size();
  c->text_ = std::move(text);
  return c;
}

std::shared_ptr<Content> Content::Generated(std::uint64_t seed, std::uint64_t size) {
  std::shared_ptr<Content> c(new Content());
  c->generated_ = true;
  c->seed_ = seed;
  c->size_ = size;
  return c;
}

void Content::Read(std::uint64_t offset, std::span<char> out) const {
  Check(offset <= size_ && out.size() <= size_ - offset, "Content::Read past the end");
  if (generated_) {
    FillGenerated(seed_, offset, out);
  } else {
    std::memcpy(out.data(), text_.data() + offset, out.size());
  }
}

std::string Content::ReadString(std::uint64_t offset, std::uint64_t length) const {
  if (offset >= size_) return {};
  length = std::min(length, size_ - offset);
  std::string out(length, '\0');
  Read(offset, out);
  return out;
}

void Content::Prepare(bool sha256, bool git_sha1) {
  sha256 = sha256 && sha256_.empty();
  git_sha1 = git_sha1 && git_sha1_.empty();
  if (!sha256 && !git_sha1) return;
  if (!generated_) {
    if (sha256) sha256_ = Sha256Hex(text_);
    if (git_sha1) {
      git_sha1_ = store::HashBytes(store::DigestKind::kGitSha1, text_).Hex();
    }
    return;
  }
  const auto key = std::make_pair(seed_, size_);
  {
    std::lock_guard lock(memo_mu);
    const Digests& known = Memo()[key];
    if (sha256 && known.sha256) {
      sha256_ = *known.sha256;
      sha256 = false;
    }
    if (git_sha1 && known.git_sha1) {
      git_sha1_ = *known.git_sha1;
      git_sha1 = false;
    }
  }
  if (!sha256 && !git_sha1) return;
  // One pass over the content feeds every hasher that is still needed.
  std::optional<store::Hasher> h256;
  std::optional<store::Hasher> h1;
  if (sha256) h256.emplace(store::DigestKind::kSha256, size_);
  if (git_sha1) h1.emplace(store::DigestKind::kGitSha1, size_);
  std::vector<char> buffer(std::min<std::uint64_t>(size_, 1 << 20));
  for (std::uint64_t offset = 0; offset < size_;) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size_ - offset));
    FillGenerated(seed_, offset, {buffer.data(), n});
    const std::string_view chunk(buffer.data(), n);
    if (h256) h256->Update(chunk);
    if (h1) h1->Update(chunk);
    offset += n;
  }
  std::lock_guard lock(memo_mu);
  Digests& known = Memo()[key];
  if (h256) known.sha256 = sha256_ = h256->Finish().Hex();
  if (h1) known.git_sha1 = git_sha1_ = h1->Finish().Hex();
}

}  // namespace hubcache::fakehub
