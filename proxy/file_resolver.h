// FileResolver: what a file request is about, from the cache when it can and
// from the Hub when it must (DESIGN.md "Request flow", steps 2-4).
//
// For (repo, revision, path) and the request's token it finds:
//   - whether the token may read the repo (AccessPolicy);
//   - the commit: a 40-hex revision is one; otherwise the refs table while
//     fresher than cache.ref_ttl;
//   - the file at that commit: the files table (a cached EntryNotFound is a
//     negative entry).
// When any of that is missing or expired, or the caller needs a download URL,
// it asks the Hub once (ResolveFile: the HEAD huggingface_hub makes, with the
// client's token) and records what it learned: ref, file, negative entry,
// public fact or grant. A refusal comes back to be relayed as the Hub gave it.
// A renamed repo's redirect comes back to be passed on, and nothing is
// recorded under the old name.
//
// Offline (upstream.offline, or the Hub unreachable within the last few
// seconds): refs are used however old (the answer is marked stale), and a
// branch or tag the refs table lacks is looked up in the stored refs listing
// (proxy/offline_refs.h); access follows the offline rules, and what is not
// cached is unavailable. With upstream.offline, a listed revision whose
// commit is not stored gets the Hub's 404 RevisionNotFound.
//
// Executor: the caller's. Index writes run on `blocking`.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/asio.h"
#include "core/secret.h"
#include "proxy/access.h"
#include "proxy/hub_client.h"
#include "proxy/hub_path.h"
#include "proxy/metrics.h"
#include "proxy/options.h"
#include "store/index.h"

namespace hubcache::proxy {

struct FileAnswer {
  enum class Kind {
    kFound,        // commit + file; download_url when the Hub was asked
    kRelay,        // the Hub's refusal (or a cached EntryNotFound): relay it
    kUnavailable,  // neither the Hub nor the cache can answer: status + message
    kMoved,        // the repo was renamed: the Hub's redirect, for the client
  };
  Kind kind = Kind::kUnavailable;
  std::string commit;
  store::FileRecord file;
  bool from_cache = false;    // answered without asking the Hub
  bool stale = false;         // a ref was used past its TTL (Hub unreachable)
  std::string download_url;   // set when the Hub was asked (signed, expiring)
  std::string resolve_url;    // where to ask again
  unsigned status = 0;        // kRelay, kUnavailable, kMoved (the Hub's 3xx)
  // kRelay, kMoved: the headers the client needs (X-Error-Code,
  // X-Error-Message, X-Repo-Commit, X-Request-Id, Retry-After,
  // WWW-Authenticate).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string message;        // kRelay: X-Error-Message; kUnavailable: why
  std::string location;       // kMoved: the Hub's Location, as it sent it
};

class FileResolver {
 public:
  FileResolver(HubClient& client, store::Index& index, AccessPolicy& access, Metrics& metrics,
               net::any_io_executor blocking, std::string upstream_url, bool offline,
               CacheOptions cache);

  // `need_download_url`: the blob is not cached, so a fresh download URL is
  // needed even when everything else is known (online only).
  net::awaitable<FileAnswer> Resolve(FileRef ref, Secret token, bool need_download_url);

  // A new cache.ref_ttl (SIGHUP reload); takes effect for the next request.
  void SetCacheOptions(const CacheOptions& cache);

  // True while requests are answered without asking the Hub.
  bool offline() const;
  // True when upstream.offline is set: the Hub is never asked (an
  // air-gapped site), as opposed to unreachable for now.
  bool configured_offline() const { return offline_; }

  // Why the Hub is not asked, for error answers while offline(): 503
  // "hubcache is offline" when configured so; otherwise the status and
  // cause of the failure that made the Hub unreachable ("the Hub is
  // unreachable (Connection refused)", 502; a timeout 504), the same for
  // every request until the Hub answers again.
  struct OfflineReason {
    unsigned status = 503;
    std::string message;
  };
  OfflineReason offline_reason() const;

  // The Hub URL of `ref`'s resolve endpoint.
  std::string ResolveUrl(const FileRef& ref) const;

 private:
  struct Cached;
  Cached FromCache(const FileRef& ref, const Secret& token, bool offline) const;
  FileAnswer Offline(const FileRef& ref, const Cached& cached, unsigned status,
                     std::string message) const;
  void MarkUnreachable(const ErrorCode& ec);

  HubClient& client_;
  store::Index& index_;
  AccessPolicy& access_;
  Metrics& metrics_;
  net::any_io_executor blocking_;
  const std::string upstream_url_;
  const bool offline_;
  std::atomic<std::int64_t> ref_ttl_s_;  // cache.ref_ttl
  std::atomic<std::int64_t> unreachable_until_ms_{0};
  mutable std::mutex reason_mu_;
  OfflineReason unreachable_;  // GUARDED_BY(reason_mu_)
};

}  // namespace hubcache::proxy
