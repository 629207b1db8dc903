#include "store/token_hmac.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>

#include "core/check.h"
#include "core/errc.h"
#include "core/unique_fd.h"

namespace hubcache::store {

Result<TokenHmac> TokenHmac::LoadOrCreate(const std::filesystem::path& cache_dir) {
  const std::filesystem::path path = cache_dir / kFileName;
  std::array<std::uint8_t, 32> key{};
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd && errno == ENOENT) {
    if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
      return Fail(core::Errc::kUnavailable);
    }
    // Write aside and rename, so a crash never leaves a short secret.
    const std::filesystem::path tmp = cache_dir / (std::string(kFileName) + ".tmp");
    UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out || ::write(out.get(), key.data(), key.size()) != static_cast<ssize_t>(key.size()) ||
        ::fsync(out.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
      return Fail(core::ErrnoError(errno));
    }
    return TokenHmac(key);
  }
  if (!fd) return Fail(core::ErrnoError(errno));
  std::uint8_t buf[33];
  const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n < 0) return Fail(core::ErrnoError(errno));
  if (n != static_cast<ssize_t>(key.size())) return Fail(core::Errc::kCorrupt);
  std::copy(buf, buf + key.size(), key.begin());
  return TokenHmac(key);
}

TokenId TokenHmac::Of(const Secret& token) const {
  TokenId out{};
  std::size_t len = 0;
  const std::string& raw = token.Reveal();
  const unsigned char* mac =
      EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_.data(), key_.size(),
                reinterpret_cast<const unsigned char*>(raw.data()), raw.size(), out.data(),
                out.size(), &len);
  Check(mac != nullptr && len == out.size(), "HMAC-SHA256 failed");
  return out;
}

}  // namespace hubcache::store
