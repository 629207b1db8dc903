#include "proxy/file_resolver.h"

#include <chrono>

#include <boost/beast/core/error.hpp>
#include <fmt/format.h>

#include "core/errc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/offload.h"
#include "proxy/errc.h"
#include "proxy/http_errors.h"
#include "proxy/offline_docs.h"
#include "proxy/offline_refs.h"
#include "proxy/resolve.h"

namespace hubcache::proxy {
namespace {

constexpr auto kModule = log::Module::kProxy;
// After a failed attempt to reach the Hub, requests are answered from the
// cache for this long without trying again, so that an outage costs one
// timeout, not one per request.
constexpr std::chrono::seconds kUnreachableHold{5};

std::int64_t NowSeconds() { return core::UnixSeconds(); }

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The headers of a Hub refusal that clients read (HUB_PROTOCOL.md §3).
constexpr std::string_view kRelayedHeaders[] = {
    "X-Error-Code", "X-Error-Message", "X-Repo-Commit",  "X-Request-Id",
    "Retry-After",  "RateLimit",       "RateLimit-Policy", "WWW-Authenticate"};

FileAnswer NegativeAnswer(const std::string& commit) {
  FileAnswer answer;
  answer.kind = FileAnswer::Kind::kRelay;
  answer.status = 404;
  answer.from_cache = true;
  answer.commit = commit;
  answer.message = "Entry not found";
  answer.headers = {{"X-Error-Code", "EntryNotFound"},
                    {"X-Error-Message", answer.message},
                    {"X-Repo-Commit", commit}};
  return answer;
}

FileAnswer Unavailable(unsigned status, std::string message) {
  FileAnswer answer;
  answer.kind = FileAnswer::Kind::kUnavailable;
  answer.status = status;
  answer.message = std::move(message);
  return answer;
}

}  // namespace

struct FileResolver::Cached {
  bool allowed = false;
  std::string commit;
  bool ref_stale = false;
  // Offline: the stored refs listing names the revision, but its commit is
  // not stored (commit stays empty).
  bool listed_not_stored = false;
  std::optional<store::FileRecord> file;
};

FileResolver::FileResolver(HubClient& client, store::Index& index, AccessPolicy& access,
                           Metrics& metrics, net::any_io_executor blocking,
                           std::string upstream_url, bool offline, CacheOptions cache)
    : client_(client),
      index_(index),
      access_(access),
      metrics_(metrics),
      blocking_(std::move(blocking)),
      upstream_url_(std::move(upstream_url)),
      offline_(offline) {
  SetCacheOptions(cache);
}

void FileResolver::SetCacheOptions(const CacheOptions& cache) {
  ref_ttl_s_.store(std::chrono::duration_cast<std::chrono::seconds>(cache.ref_ttl).count());
}

bool FileResolver::offline() const {
  return offline_ || NowMs() < unreachable_until_ms_.load();
}

std::string FileResolver::ResolveUrl(const FileRef& ref) const {
  return fmt::format("{}/{}{}/resolve/{}/{}", upstream_url_, store::RepoTypePrefix(ref.repo.type),
                     ref.repo.name, PercentEncode(ref.revision, false),
                     PercentEncode(ref.path, true));
}

FileResolver::OfflineReason FileResolver::offline_reason() const {
  if (offline_) return {.status = HttpStatusFor(Errc::kOffline), .message = "hubcache is offline"};
  std::lock_guard lock(reason_mu_);
  return unreachable_;
}

void FileResolver::MarkUnreachable(const ErrorCode& ec) {
  {
    std::lock_guard lock(reason_mu_);
    unreachable_ = {.status = HttpStatusFor(ec),
                    .message = fmt::format("the Hub is unreachable ({})", ec.message())};
  }
  const std::int64_t until =
      NowMs() + std::chrono::duration_cast<std::chrono::milliseconds>(kUnreachableHold).count();
  if (unreachable_until_ms_.exchange(until) < NowMs()) {
    log::Warn(kModule, "upstream_unreachable",
              {{"error", ec.message()}, {"hold_s", kUnreachableHold.count()}});
  }
}

FileResolver::Cached FileResolver::FromCache(const FileRef& ref, const Secret& token,
                                             bool offline) const {
  Cached cached;
  cached.allowed = access_.Allows(ref.repo, token, offline);
  if (store::IsCommitHash(ref.revision)) {
    cached.commit = ref.revision;
  } else if (auto r = index_.GetRef(ref.repo, ref.revision); r && *r) {
    const std::int64_t ttl = ref_ttl_s_.load();
    const bool fresh = NowSeconds() - (*r)->fetched_at < ttl;
    if (fresh || offline) {
      cached.commit = (*r)->commit;
      cached.ref_stale = !fresh;
    }
  }
  if (cached.commit.empty() && offline) {
    // A branch or tag nobody asked for here: the stored refs listing knows
    // it (proxy/offline_refs.h).
    if (auto listed = ListedCommit(index_, ref.repo, ref.revision)) {
      if (CommitStored(index_, ref.repo, *listed)) {
        cached.commit = std::move(*listed);
        cached.ref_stale = true;
      } else {
        cached.listed_not_stored = true;
      }
    }
  }
  if (!cached.commit.empty()) {
    if (auto f = index_.GetFile(ref.repo, cached.commit, ref.path); f && *f) cached.file = **f;
  }
  return cached;
}

FileAnswer FileResolver::Offline(const FileRef& ref, const Cached& cached, unsigned status,
                                 std::string message) const {
  if (!cached.allowed) {
    return Unavailable(status, fmt::format("{}; access to {} cannot be confirmed for this request",
                                           message, ref.repo.name));
  }
  if (cached.commit.empty()) {
    if (cached.listed_not_stored && offline_) {
      // An air-gapped hubcache will never have that commit: the Hub's
      // answer for a revision it does not have, so clients stop at once.
      // (Merely unreachable, the Hub may answer soon: a 5xx lets clients
      // fall back to their own cache and retry.)
      const RevisionNotFoundAnswer missing(ref.revision);
      FileAnswer answer;
      answer.kind = FileAnswer::Kind::kRelay;
      answer.status = missing.status;
      answer.from_cache = true;
      answer.message = missing.message;
      answer.headers = missing.headers;
      return answer;
    }
    return Unavailable(status, fmt::format("{}; revision {} of {} is not cached", message,
                                           ref.revision, ref.repo.name));
  }
  if (!cached.file) {
    // Not asked before; the stored tree of the commit may know it is absent.
    if (StoredTreeHasFile(index_, ref.repo, cached.commit, ref.path) == false) {
      return NegativeAnswer(cached.commit);
    }
    return Unavailable(status, fmt::format("{}; {} at {} is not cached", message, ref.path,
                                           cached.commit));
  }
  if (!cached.file->exists) return NegativeAnswer(cached.commit);
  FileAnswer answer;
  answer.kind = FileAnswer::Kind::kFound;
  answer.from_cache = true;
  answer.commit = cached.commit;
  answer.file = *cached.file;
  answer.stale = cached.ref_stale;
  return answer;
}

net::awaitable<FileAnswer> FileResolver::Resolve(FileRef ref, Secret token,
                                                 bool need_download_url) {
  if (offline()) {
    const OfflineReason why = offline_reason();
    co_return Offline(ref, FromCache(ref, token, true), why.status, why.message);
  }
  const Cached cached = FromCache(ref, token, false);
  if (cached.allowed && !cached.commit.empty() && cached.file && !cached.ref_stale &&
      (!need_download_url || !cached.file->exists)) {
    co_return Offline(ref, cached, HttpStatusFor(Errc::kOffline), "");
  }

  const std::string url = ResolveUrl(ref);
  auto resolved = co_await ResolveFile(client_, url, token);
  if (!resolved) {
    const ErrorCode ec = resolved.error();
    if (ec == core::Errc::kCorrupt) {
      log::Warn(kModule, "upstream_invalid_answer", {{"repo", ref.repo.name}, {"path", ref.path}});
      co_return Unavailable(HttpStatusFor(ec), "The Hub sent an answer without commit, etag or size");
    }
    MarkUnreachable(ec);
    const OfflineReason why = offline_reason();
    co_return Offline(ref, FromCache(ref, token, true), why.status, why.message);
  }

  if (resolved->status == 200) {
    metrics_.CountGrantCheck(true);
    // Whether a token was sent, never the token (nor its HMAC).
    log::Debug(kModule, "access_confirmed",
               {{"repo", ref.repo.name}, {"token", !token.empty()}});
    auto digest = store::Digest::Parse(
        resolved->lfs ? store::DigestKind::kSha256 : store::DigestKind::kGitSha1, resolved->etag);
    if (!digest) {
      log::Warn(kModule, "upstream_invalid_etag", {{"repo", ref.repo.name}, {"path", ref.path}});
      co_return Unavailable(HttpStatusFor(core::Errc::kCorrupt), "The Hub sent an invalid ETag");
    }
    FileAnswer answer;
    answer.kind = FileAnswer::Kind::kFound;
    answer.commit = resolved->commit;
    answer.file = {.exists = true, .lfs = resolved->lfs, .digest = *digest,
                   .size = resolved->size};
    answer.download_url = resolved->download_url;
    // Asked again (an expired download URL, a peer leading the fetch) at the
    // commit, not the branch: a branch that moves meanwhile cannot change
    // what these bytes are.
    FileRef at_commit = ref;
    at_commit.revision = answer.commit;
    answer.resolve_url = ResolveUrl(at_commit);
    auto written = co_await core::Offload(blocking_, [&]() -> Result<void> {
      if (ref.revision != answer.commit) {
        auto put = index_.PutRef(ref.repo, ref.revision,
                                 {.commit = answer.commit, .fetched_at = NowSeconds()});
        if (!put) return put;
      }
      auto put = index_.PutFile(ref.repo, answer.commit, ref.path, answer.file);
      if (!put) return put;
      return access_.RecordSuccess(ref.repo, token);
    });
    if (!written) {
      log::Warn(kModule, "index_write_failed",
                {{"repo", ref.repo.name}, {"error", written.error().message()}});
    }
    co_return answer;
  }

  const unsigned status = resolved->status;
  const ResponseHead& head = resolved->head;
  if (!resolved->moved_to.empty()) {
    // A renamed repo: the client follows the redirect and asks for the new
    // name; nothing (ref, file, access fact) is recorded under the old one.
    log::Debug(kModule, "repo_moved",
               {{"repo", ref.repo.name}, {"status", status},
                {"location", resolved->moved_to.substr(0, resolved->moved_to.find('?'))}});
    FileAnswer answer;
    answer.kind = FileAnswer::Kind::kMoved;
    answer.status = status;
    answer.location = resolved->moved_to;
    for (std::string_view name : kRelayedHeaders) {
      std::string value = head.Header(name);
      if (!value.empty()) answer.headers.emplace_back(name, std::move(value));
    }
    co_return answer;
  }
  if (status >= 300 && status < 400) {
    // A redirect ResolveFile does not follow any further: relaying it would
    // hand the client a 3xx it cannot use.
    log::Warn(kModule, "upstream_unexpected_redirect",
              {{"repo", ref.repo.name}, {"path", ref.path}, {"status", status}});
    co_return Unavailable(HttpStatusFor(Errc::kBadRedirect),
                          "The Hub redirected this file further than hubcache follows");
  }
  if (status >= 500 || status == 429) {
    // The Hub is in trouble: what the cache knows is better than an error.
    FileAnswer fallback = Offline(ref, FromCache(ref, token, true), status, "");
    if (fallback.kind != FileAnswer::Kind::kUnavailable) {
      fallback.stale = true;
      co_return fallback;
    }
  }
  FileAnswer answer;
  answer.kind = FileAnswer::Kind::kRelay;
  answer.status = status;
  for (std::string_view name : kRelayedHeaders) {
    std::string value = head.Header(name);
    if (!value.empty()) answer.headers.emplace_back(name, std::move(value));
  }
  answer.message = head.Header("x-error-message");
  // A refusal of the request's credentials: the Hub answers a private repo
  // the token may not see with 404 RepoNotFound.
  if (status == 401 || status == 403 ||
      (status == 404 && head.Header("x-error-code") == "RepoNotFound")) {
    metrics_.CountGrantCheck(false);
    log::Debug(kModule, "access_refused",
               {{"repo", ref.repo.name}, {"token", !token.empty()}, {"status", status}});
    auto written =
        co_await core::Offload(blocking_, [&] { return access_.RecordRefusal(ref.repo, token); });
    if (!written) {
      log::Warn(kModule, "index_write_failed",
                {{"repo", ref.repo.name}, {"error", written.error().message()}});
    }
  }
  const std::string commit = head.Header("x-repo-commit");
  if (status == 404 && head.Header("x-error-code") == "EntryNotFound" && store::IsCommitHash(commit)) {
    answer.commit = commit;
    auto written = co_await core::Offload(blocking_, [&] {
      const store::FileRecord missing{
          .exists = false, .lfs = false, .digest = std::nullopt, .size = 0};
      return index_.PutFile(ref.repo, commit, ref.path, missing);
    });
    if (!written) {
      log::Warn(kModule, "index_write_failed",
                {{"repo", ref.repo.name}, {"error", written.error().message()}});
    }
  }
  co_return answer;
}

}  // namespace hubcache::proxy
