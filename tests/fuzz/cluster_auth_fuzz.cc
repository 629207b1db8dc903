// libFuzzer target: the signature headers of a cluster request and a sealed
// token (p2p/cluster_auth.h), as a node without the secret could send them.
// Nothing forged verifies, nothing forged opens, and neither crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "p2p/cluster_auth.h"
#include "tests/fuzz/require.h"

namespace p2p = hubcache::p2p;

using hubcache::fuzz::Require;

namespace {
const p2p::ClusterKey& Key() {
  static const p2p::ClusterKey key(hubcache::Secret("the fuzzer's cluster secret, 32 bytes"));
  return key;
}

// Splits `text` at the first `n` NUL bytes.
std::string_view Next(std::string_view& text) {
  const std::size_t at = text.find('\0');
  std::string_view out = text.substr(0, at);
  text = at == std::string_view::npos ? std::string_view() : text.substr(at + 1);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string_view method = Next(text);
  const std::string_view target = Next(text);
  p2p::SignedHeaders headers;
  headers.node = std::string(Next(text));
  headers.time = std::string(Next(text));
  headers.signature = std::string(Next(text));
  const std::string_view body = text;
  const std::int64_t now = 1'800'000'000;
  const p2p::AuthVerdict verdict =
      Key().Verify(method, target, body, headers, now, std::chrono::seconds(60));
  // A signature the fuzzer made up never passes (it would need the secret).
  Require(verdict != p2p::AuthVerdict::kOk);
  // Signed for real, it passes; any change to the body breaks it.
  const p2p::SignedHeaders real = Key().Sign(method, target, body, "10.0.0.2:8090", now);
  Require(Key().Verify(method, target, body, real, now, std::chrono::seconds(60)) ==
          p2p::AuthVerdict::kOk);
  const std::string changed = std::string(body) + "x";
  Require(Key().Verify(method, target, changed, real, now, std::chrono::seconds(60)) !=
          p2p::AuthVerdict::kOk);
  // A forged sealed token does not open.
  Require(!Key().Open(body, target));
  return 0;
}
