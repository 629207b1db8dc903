#include "proxy/resolve.h"

#include <charconv>

#include "core/errc.h"
#include "core/log.h"
#include "proxy/errc.h"
#include "proxy/hub_path.h"

namespace hubcache::proxy {
namespace {

std::optional<std::uint64_t> ParseSize(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool IsCommit(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The repo a resolve or resolve-cache path names (query and fragment cut).
std::optional<store::RepoId> RepoOfPath(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  auto file = path.starts_with("/api/resolve-cache/") ? ParseResolveCachePath(path)
                                                       : ParseResolvePath(path);
  if (!file) return std::nullopt;
  return file->repo;
}

OutRequest Head(std::string url, const Secret& token) {
  OutRequest request;
  request.method = http::verb::head;
  request.url = std::move(url);
  request.token = token;
  request.follow_redirects = false;
  // True sizes, never compressed ones (HUB_PROTOCOL.md §2.5).
  request.headers.emplace_back("Accept-Encoding", "identity");
  return request;
}

}  // namespace

std::string UnquoteEtag(std::string_view etag) {
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

net::awaitable<Result<ResolvedFile>> ResolveFile(HubClient& client, std::string resolve_url,
                                                 Secret token) {
  auto first = co_await client.Fetch(Head(resolve_url, token));
  if (!first) co_return Fail(first.error());
  ResolvedFile file;
  file.head = first->head;
  file.status = first->head.status;
  const ResponseHead& head = first->head;
  file.commit = head.Header("x-repo-commit");
  const unsigned status = head.status;
  if (status >= 300 && status < 400) {
    const std::string location = head.Header("location");
    if (location.empty()) co_return Fail(Errc::kBadRedirect);
    const auto base = core::ParseUrl(resolve_url);
    const bool absolute = location.starts_with("http://") || location.starts_with("https://");
    const auto target = absolute ? core::ParseUrl(location) : std::nullopt;
    if (absolute && !target) co_return Fail(Errc::kBadRedirect);
    if (absolute && Origin::Of(*target) != Origin::Of(*base)) {
      // LFS: the CDN holds the bytes; the Hub's headers describe them.
      file.lfs = !head.Header("x-linked-etag").empty();
      file.etag = UnquoteEtag(file.lfs ? head.Header("x-linked-etag") : head.Header("etag"));
      const auto size = ParseSize(head.Header("x-linked-size"));
      if (!size || file.etag.empty() || !IsCommit(file.commit)) co_return Fail(core::Errc::kCorrupt);
      file.size = *size;
      file.download_url = location;
      file.status = 200;
      co_return file;
    }
    // The same route for another repo: the repo was renamed. The client
    // must follow that itself, so that it asks for (and hubcache caches
    // under) the new name only.
    const auto asked = RepoOfPath(base->path);
    const auto told = RepoOfPath(absolute ? target->path : location);
    if (asked && told && *asked != *told) {
      file.moved_to = location;
      co_return file;
    }
    // Same origin (the Hub's relative 307 to /api/resolve-cache/...): ask it.
    const std::string next =
        absolute ? location : base->scheme + "://" + base->Authority() +
                                  (location.front() == '/' ? "" : "/") + location;
    auto second = co_await client.Fetch(Head(next, token));
    if (!second) co_return Fail(second.error());
    file.head = second->head;
    file.status = second->head.status;
    if (file.status != 200) co_return file;
    if (file.commit.empty()) file.commit = second->head.Header("x-repo-commit");
    file.lfs = !second->head.Header("x-linked-etag").empty();
    file.etag = UnquoteEtag(file.lfs ? second->head.Header("x-linked-etag")
                                     : second->head.Header("etag"));
    const auto size = ParseSize(file.lfs ? second->head.Header("x-linked-size")
                                         : second->head.Header("content-length"));
    if (!size || file.etag.empty() || !IsCommit(file.commit)) co_return Fail(core::Errc::kCorrupt);
    file.size = *size;
    file.download_url = next;
    co_return file;
  }
  if (status != 200) co_return file;  // the Hub's refusal, to relay
  file.lfs = !head.Header("x-linked-etag").empty();
  file.etag = UnquoteEtag(file.lfs ? head.Header("x-linked-etag") : head.Header("etag"));
  const auto size = ParseSize(file.lfs && !head.Header("x-linked-size").empty()
                                  ? head.Header("x-linked-size")
                                  : head.Header("content-length"));
  if (!size || file.etag.empty() || !IsCommit(file.commit)) co_return Fail(core::Errc::kCorrupt);
  file.size = *size;
  file.download_url = resolve_url;
  co_return file;
}

}  // namespace hubcache::proxy
