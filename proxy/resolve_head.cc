#include "proxy/resolve_head.h"

#include <charconv>
#include <optional>

#include "core/errc.h"
#include "core/url.h"
#include "proxy/errc.h"
#include "proxy/hub_path.h"
#include "store/repo_id.h"

namespace hubcache::proxy {
namespace {

std::optional<std::uint64_t> ParseSize(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool SameOrigin(const core::Url& a, const core::Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

// The repo a resolve or resolve-cache path names (query and fragment cut).
std::optional<store::RepoId> RepoOfPath(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  auto file = path.starts_with("/api/resolve-cache/") ? ParseResolveCachePath(path)
                                                       : ParseResolvePath(path);
  if (!file) return std::nullopt;
  return file->repo;
}

// A file found: etag and size from the X-Linked-* headers for LFS, from
// ETag and `plain_size` otherwise.
Result<HeadReading> Found(HeadReading reading, const HeaderLookup& header,
                          std::string_view plain_size) {
  const std::string linked_etag = header("x-linked-etag");
  reading.lfs = !linked_etag.empty();
  reading.etag = UnquoteEtag(reading.lfs ? linked_etag : header("etag"));
  const std::string linked_size = header("x-linked-size");
  const auto size = ParseSize(reading.lfs && !linked_size.empty() ? std::string_view(linked_size)
                                                                  : plain_size);
  if (!size || reading.etag.empty() || !store::IsCommitHash(reading.commit)) {
    return Fail(core::Errc::kCorrupt);
  }
  reading.size = *size;
  reading.step = HeadStep::kFound;
  return reading;
}

}  // namespace

std::string UnquoteEtag(std::string_view etag) {
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

Result<HeadReading> ReadResolveHead(std::string_view resolve_url, unsigned status,
                                    const HeaderLookup& header) {
  HeadReading reading;
  reading.commit = header("x-repo-commit");
  if (status >= 300 && status < 400) {
    const std::string location = header("location");
    const auto base = core::ParseUrl(resolve_url);
    if (location.empty() || !base) return Fail(Errc::kBadRedirect);
    const bool absolute = location.starts_with("http://") || location.starts_with("https://");
    const auto target = absolute ? core::ParseUrl(location) : std::nullopt;
    if (absolute && !target) return Fail(Errc::kBadRedirect);
    if (absolute && !SameOrigin(*target, *base)) {
      // LFS: the CDN holds the bytes; the Hub's headers describe them (the
      // size only from X-Linked-Size: a redirect's own length is its body's).
      reading.url = location;
      return Found(std::move(reading), header, header("x-linked-size"));
    }
    // The same route for another repo: the repo was renamed. The client
    // must follow that itself, so that it asks for (and hubcache caches
    // under) the new name only.
    const auto asked = RepoOfPath(base->path);
    const auto told = RepoOfPath(absolute ? std::string_view(target->path) : location);
    if (asked && told && *asked != *told) {
      reading.step = HeadStep::kMoved;
      reading.url = location;
      return reading;
    }
    // Same origin (the Hub's relative 307 to /api/resolve-cache/...): ask it.
    // A path-relative or scheme-relative Location is taken as a path on the
    // Hub's own origin: the token never goes anywhere else.
    reading.step = HeadStep::kAskAgain;
    reading.url = absolute ? location
                           : base->scheme + "://" + base->Authority() +
                                 (location.front() == '/' ? "" : "/") + location;
    return reading;
  }
  if (status != 200) return reading;  // the Hub's refusal, to relay
  reading.url = std::string(resolve_url);
  return Found(std::move(reading), header, header("content-length"));
}

Result<HeadReading> ReadSecondHead(std::string_view url, std::string_view commit,
                                   unsigned status, const HeaderLookup& header) {
  HeadReading reading;
  reading.commit = commit.empty() ? header("x-repo-commit") : std::string(commit);
  if (status != 200) return reading;
  reading.url = std::string(url);
  return Found(std::move(reading), header, header("content-length"));
}

}  // namespace hubcache::proxy
