// libFuzzer target: how hubcache reads the Hub's answers to a resolve HEAD
// (proxy/resolve_head.h), whatever status and headers an upstream sends.
// Input: one byte picking the URL asked, two bytes of status, then header
// lines `name: value` (the first of a name counts, as in ResponseHead).
// Checks that a second HEAD, which carries the client's token, only ever
// goes to the origin of the first; that a found file has a commit hash, an
// etag and a size; and that a rename passes the Location on untouched.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/url.h"
#include "proxy/resolve_head.h"
#include "store/repo_id.h"
#include "tests/fuzz/require.h"

namespace proxy = hubcache::proxy;
namespace core = hubcache::core;

using hubcache::fuzz::Require;

namespace {

constexpr std::string_view kAsked[] = {
    "https://huggingface.co/org/model/resolve/main/config.json",
    "https://huggingface.co/datasets/org/data/resolve/v1.0/train/part-0.parquet",
    "http://127.0.0.1:8443/hub/org/model/resolve/0123456789abcdef0123456789abcdef01234567/a%20b",
    "https://[::1]:9000/org/model/resolve/main/model.safetensors?download=true",
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

void CheckOrigin(std::string_view asked, const std::string& next) {
  const auto base = core::ParseUrl(asked);
  Require(base.has_value());
  // Textually on the same scheme://authority, and parsed so too.
  const std::string origin = base->scheme + "://" + base->Authority();
  if (auto target = core::ParseUrl(next)) {
    Require(target->scheme == base->scheme && target->host == base->host &&
            target->port == base->port);
  } else {
    // Unusable as a URL: the request fails; it still names no other host.
    Require(next.starts_with(origin + "/") || next.starts_with("http://") ||
            next.starts_with("https://"));
  }
}

void CheckFound(const proxy::HeadReading& reading) {
  Require(hubcache::store::IsCommitHash(reading.commit));
  Require(!reading.etag.empty());
  Require(!reading.url.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::string_view asked = kAsked[data[0] % std::size(kAsked)];
  const unsigned status = 100 + (static_cast<unsigned>(data[1]) << 8 | data[2]) % 500;
  std::string_view text(reinterpret_cast<const char*>(data + 3), size - 3);
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    fields.emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
  }
  const proxy::HeaderLookup header = [&](std::string_view name) {
    for (const auto& [n, v] : fields) {
      if (EqualsIgnoreCase(n, name)) return std::string(v);
    }
    return std::string();
  };

  auto first = proxy::ReadResolveHead(asked, status, header);
  if (!first) return 0;
  switch (first->step) {
    case proxy::HeadStep::kFound:
      CheckFound(*first);
      break;
    case proxy::HeadStep::kMoved:
      Require(status >= 300 && status < 400);
      Require(first->url == header("location"));
      break;
    case proxy::HeadStep::kRelay:
      Require(status < 300 || status >= 400);
      Require(status != 200);
      break;
    case proxy::HeadStep::kAskAgain: {
      Require(status >= 300 && status < 400);
      CheckOrigin(asked, first->url);
      // The same headers answer the second HEAD.
      auto second = proxy::ReadSecondHead(first->url, first->commit, status == 307 ? 200 : status,
                                          header);
      if (second && second->step == proxy::HeadStep::kFound) CheckFound(*second);
      if (second) Require(second->step == proxy::HeadStep::kFound ||
                          second->step == proxy::HeadStep::kRelay);
      break;
    }
  }
  return 0;
}
