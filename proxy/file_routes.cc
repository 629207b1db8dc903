// ServeFile and the helpers the Hub routes share.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/errc.h"
#include "core/log.h"
#include "core/offload.h"
#include "proxy/blob_sender.h"
#include "proxy/errc.h"
#include "proxy/http_errors.h"
#include "proxy/hub_routes.h"
#include "proxy/relay.h"
#include "proxy/shaping.h"
#include "store/errc.h"
#include "store/small_blob_cache.h"

namespace hubcache::proxy {
namespace {

constexpr auto kModule = log::Module::kProxy;

// Headers a browser client (huggingface.js in a page) may read.
constexpr const char* kExposeHeaders =
    "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,"
    "Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Cache";

bool ValidHost(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '[' || c == ']' || c == '_')) {
      return false;
    }
  }
  return true;
}

// The head of a found file's answer, before status and framing.
http::response_header<> FileHead(const FileAnswer& answer) {
  http::response_header<> head;
  const std::string etag = fmt::format("\"{}\"", answer.file.digest->Hex());
  head.set("X-Repo-Commit", answer.commit);
  head.set(http::field::etag, etag);
  if (answer.file.lfs) {
    head.set("X-Linked-Etag", etag);
    head.set("X-Linked-Size", std::to_string(answer.file.size));
  }
  head.set(http::field::accept_ranges, "bytes");
  head.set(http::field::content_type, "application/octet-stream");
  head.set(http::field::access_control_expose_headers, kExposeHeaders);
  return head;
}

net::awaitable<SentBlob> SendFileBody(HubContext& hub, Exchange& exchange,
                                      http::response_header<> head, const RangeRequest& range,
                                      BlobBody body, CacheStatus cache) {
  head.set("X-Cache", CacheStatusHeader(cache));
  exchange.set_cache(CacheStatusHeader(cache));
  SentBlob sent = co_await SendBlob(exchange, std::move(head), range, std::move(body));
  if (sent.answered) hub.metrics.CountServed(cache, sent.body_bytes);
  co_return sent;
}

// A stored blob that cannot be read back (a failing disk, a file cut short
// behind hubcache's back) leaves the store, so that the next request fetches
// it again instead of failing the same way forever.
net::awaitable<void> QuarantineBlob(HubContext& hub, Exchange& exchange, store::Digest digest,
                                    ErrorCode why) {
  log::Error(kModule, "blob_unreadable",
             {{"req", exchange.id()}, {"digest", digest.Hex()}, {"error", why.message()}});
  const std::string reason = why.message();
  auto taken = co_await core::Offload(
      hub.blocking, [&hub, &digest, &reason] { return hub.store.Quarantine(digest, reason); });
  if (!taken) {
    log::Warn(kModule, "quarantine_failed",
              {{"req", exchange.id()}, {"digest", digest.Hex()}, {"error", taken.error().message()}});
  }
}

// The store has no room for this blob: stream it from upstream uncached.
net::awaitable<void> PassThrough(HubContext& hub, Exchange& exchange, const FileAnswer& answer,
                                 Secret token) {
  OutRequest out;
  out.url = answer.download_url;
  out.token = std::move(token);
  const std::string range = std::string(ToStd(exchange.request()[http::field::range]));
  if (!range.empty()) out.headers.emplace_back("Range", range);
  if (exchange.is_head()) out.method = http::verb::head;
  RelaySink sink(exchange, hub.upstream_url, PublicBase(hub, exchange.request()),
                 CacheStatus::kPass);
  auto result = co_await hub.client.Send(std::move(out), sink);
  co_await sink.Finish(result);
  hub.metrics.CountServed(CacheStatus::kPass, sink.body_bytes());
  hub.metrics.CountUpstreamBytes(sink.body_bytes());
}

}  // namespace

Secret RequestToken(const Request& request) {
  const std::string_view value = ToStd(request[http::field::authorization]);
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() > kBearer.size() &&
      beast::iequals(ToBeast(value.substr(0, kBearer.size())), ToBeast(kBearer))) {
    std::string_view token = value.substr(kBearer.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    return Secret(std::string(token));
  }
  return Secret();
}

std::string PublicBase(const HubContext& hub, const Request& request) {
  if (!hub.public_url.empty()) return hub.public_url;
  const std::string_view host = ToStd(request[http::field::host]);
  return fmt::format("http://{}", ValidHost(host) ? host : "localhost");
}

net::awaitable<void> SendJsonError(Exchange& exchange, unsigned status, std::string_view message,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   CacheStatus cache) {
  StringResponse response(static_cast<http::status>(status), exchange.request().version());
  bool has_message = false;
  for (const auto& [name, value] : headers) {
    response.set(name, value);
    has_message = has_message || beast::iequals(name, "X-Error-Message");
  }
  if (!has_message && !message.empty()) {
    // Header values must stay on one line.
    std::string line(message);
    for (char& c : line) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    response.set("X-Error-Message", line);
  }
  response.set("X-Cache", CacheStatusHeader(cache));
  exchange.set_cache(CacheStatusHeader(cache));
  response.set(http::field::content_type, "application/json");
  response.set(http::field::access_control_expose_headers, kExposeHeaders);
  response.body() = nlohmann::json{{"error", message}}.dump();
  co_await exchange.Send(std::move(response));
}

net::awaitable<void> SendJsonError(Exchange& exchange, unsigned status, std::string_view message,
                                   CacheStatus cache) {
  const std::vector<std::pair<std::string, std::string>> none;
  co_await SendJsonError(exchange, status, message, none, cache);
}

net::awaitable<void> SendMoved(HubContext& hub, Exchange& exchange, unsigned status,
                               std::string_view location,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  const auto moved =
      RewriteLocation(location, hub.upstream_url, PublicBase(hub, exchange.request()));
  if (!moved) {
    co_await SendJsonError(exchange, HttpStatusFor(Errc::kBadRedirect),
                           "The Hub redirected this request away from the Hub",
                           CacheStatus::kMiss);
    co_return;
  }
  StringResponse response(static_cast<http::status>(status), exchange.request().version());
  for (const auto& [name, value] : headers) response.set(name, value);
  response.set(http::field::location, *moved);
  response.set("X-Cache", CacheStatusHeader(CacheStatus::kMiss));
  exchange.set_cache(CacheStatusHeader(CacheStatus::kMiss));
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.set(http::field::access_control_expose_headers, kExposeHeaders);
  response.body() = "Redirecting to " + *moved;
  co_await exchange.Send(std::move(response));
}

namespace {

// HEAD: metadata only; X-Cache tells whether the bytes are stored. A download
// whose bytes are verified is being made durable: wait for that (the disk,
// not the network), so that HIT means "in the store" (prefetch relies on it).
net::awaitable<void> AnswerHead(HubContext& hub, Exchange& exchange, http::response_header<> head,
                                const FileAnswer& answer, CacheStatus cached) {
  const store::Digest& digest = *answer.file.digest;
  auto blob = hub.store.GetBlob(digest);
  bool present = blob && blob->has_value();
  if (!present) {
    if (std::shared_ptr<Fetch> publishing = hub.fetches.Find(digest);
        publishing != nullptr && publishing->verified()) {
      co_await publishing->WaitDone();
    }
    // Looked up again even when no download was found: one may have
    // committed and left between the lookup above and Find().
    blob = hub.store.GetBlob(digest);
    present = blob && blob->has_value();
  }
  head.set("X-Cache", CacheStatusHeader(present ? cached : CacheStatus::kMiss));
  exchange.set_cache(CacheStatusHeader(present ? cached : CacheStatus::kMiss));
  head.result(http::status::ok);
  head.set(http::field::content_length, std::to_string(answer.file.size));
  co_await exchange.SendHead(head);
  exchange.MarkAnswered(200, 0, exchange.keep_alive());
}

// GET of a stored blob. Returns false (nothing sent) when the store does not
// hold it. The lookups are bounded work fit for the event loop (see
// store/blob_store.h and store/small_blob_cache.h).
net::awaitable<bool> ServeStored(HubContext& hub, Exchange& exchange, const RangeRequest& range,
                                 const FileAnswer& answer, CacheStatus cached) {
  const store::Digest& digest = *answer.file.digest;
  const std::uint64_t size = answer.file.size;
  if (range.kind == RangeRequest::Kind::kWhole && size <= store::SmallBlobCache::kMaxBlobBytes) {
    if (auto content = hub.small_blobs.Get(digest)) {
      BlobBody body{.fd = {}, .size = size, .fetch = {}, .content = std::move(content)};
      co_await SendFileBody(hub, exchange, FileHead(answer), range, std::move(body), cached);
      co_return true;
    }
  }
  auto blob = hub.store.Lookup(digest);
  if (!blob) {
    if (blob.error() == core::Errc::kCorrupt) {
      co_await QuarantineBlob(hub, exchange, digest, blob.error());
    } else if (blob.error() != core::Errc::kNotFound) {
      log::Warn(kModule, "blob_unreadable",
                {{"req", exchange.id()}, {"digest", digest.Hex()}, {"error", blob.error().message()}});
    }
    co_return false;
  }
  BlobBody body{.fd = std::move(blob->fd),
                .size = size,
                .unreadable = [&hub, &exchange, digest](ErrorCode why) {
                  return QuarantineBlob(hub, exchange, digest, why);
                }};
  const SentBlob sent =
      co_await SendFileBody(hub, exchange, FileHead(answer), range, std::move(body), cached);
  // Nothing sent: the caller fetches the blob again.
  co_return sent.answered;
}

// GET of a blob the store does not hold: join its download, or start one
// from the sources, and stream it as it arrives. Pass-through when the store
// has no room for it. Returns false, having sent nothing, when `may_start_over`
// and the download this request joined failed before its first byte (its
// starter got the error), or failed to start when this request has no
// download URL to pass through from: the caller starts over with a download
// URL of its own.
net::awaitable<bool> ServeFetching(HubContext& hub, Exchange& exchange, const RangeRequest& range,
                                   const FileRef& ref, const FileAnswer& answer,
                                   const Secret& token, CacheStatus cached, bool may_start_over) {
  const store::Digest& digest = *answer.file.digest;
  const std::uint64_t size = answer.file.size;
  // A named object, not a temporary in the co_await expression (GCC 12
  // mishandles those; see proxy/fetch.cc).
  BlobRequest request{.digest = digest,
                      .size = size,
                      .repo = ref.repo,
                      .path = ref.path,
                      .download_url = answer.download_url,
                      .resolve_url = answer.resolve_url,
                      .token = token};
  auto joined = co_await hub.fetches.Join(std::move(request));
  if (!joined) {
    // Committed meanwhile (or by the time a joined opening failed).
    if (co_await ServeStored(hub, exchange, range, answer, cached)) co_return true;
    if (answer.download_url.empty()) {
      // It joined a download without asking where the bytes are, and that
      // download could not open its writer (no room, say): a pass-through
      // needs the URL.
      if (may_start_over) co_return false;
      co_await SendJsonError(exchange, HttpStatusFor(Errc::kSourceUnavailable),
                             "hubcache could not download this file", CacheStatus::kMiss);
      co_return true;
    }
    log::Info(kModule, "pass_through",
              {{"req", exchange.id()}, {"digest", digest.Hex()}, {"bytes", size},
               {"reason", joined.error().message()}});
    co_await PassThrough(hub, exchange, answer, token);
    co_return true;
  }
  std::shared_ptr<Fetch> fetch = std::move(joined->fetch);
  // The descriptor first: it reads the download's bytes whatever becomes of
  // its file, even when the blob is committed and evicted at once (a small
  // cache under pressure) before this request sends its first byte.
  auto reader = fetch->OpenReader();
  if (!reader) {
    if (co_await ServeStored(hub, exchange, range, answer, cached)) co_return true;
    log::Warn(kModule, "download_unreadable",
              {{"req", exchange.id()}, {"digest", digest.Hex()}, {"error", reader.error().message()}});
    co_await SendJsonError(exchange, HttpStatusFor(Errc::kDownloadUnreadable),
                           "hubcache cannot read the download in progress", CacheStatus::kMiss);
    co_return true;
  }
  // MISS from the Hub, PEER from another node: known once a source answers
  // (the Hub: a checked response head; a peer: its first verified piece).
  // A failure before any byte is an error status, not a cut 200.
  auto supplier = co_await fetch->WaitForSupplier();
  if (!supplier) {
    if (co_await ServeStored(hub, exchange, range, answer, cached)) co_return true;
    if (!joined->started && may_start_over) {
      log::Info(kModule, "joined_download_failed",
                {{"req", exchange.id()}, {"digest", digest.Hex()},
                 {"error", supplier.error().message()}});
      co_return false;
    }
    log::Warn(kModule, "download_failed",
              {{"req", exchange.id()}, {"digest", digest.Hex()},
               {"error", supplier.error().message()}});
    co_await SendJsonError(exchange, HttpStatusFor(supplier.error()),
                           "hubcache could not download this file", CacheStatus::kMiss);
    co_return true;
  }
  CacheStatus status = CacheStatus::kCoalesced;
  if (joined->started) {
    status = *supplier;
  } else if (fetch->verified()) {
    // Every byte is here and verified; only the commit may still be running.
    status = cached;
  }
  if (status == CacheStatus::kCoalesced) hub.metrics.CountCoalesced();
  const Fetch::Reader counted(fetch);
  BlobBody body{.fd = std::move(*reader),
                .size = size,
                .fetch = std::move(fetch),
                .verified_end = hub.options.verified_ranges};
  co_await SendFileBody(hub, exchange, FileHead(answer), range, std::move(body), status);
  co_return true;
}

}  // namespace

net::awaitable<void> ServeFile(HubContext& hub, Exchange& exchange, FileRef ref) {
  const Secret token = RequestToken(exchange.request());
  bool need_download_url = false;
  bool started_over = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    FileAnswer answer = co_await hub.files.Resolve(ref, token, need_download_url);
    if (answer.kind == FileAnswer::Kind::kUnavailable) {
      co_await SendJsonError(exchange, answer.status, answer.message, CacheStatus::kMiss);
      co_return;
    }
    if (answer.kind == FileAnswer::Kind::kMoved) {
      co_await SendMoved(hub, exchange, answer.status, answer.location, answer.headers);
      co_return;
    }
    if (answer.kind == FileAnswer::Kind::kRelay) {
      co_await SendJsonError(exchange, answer.status, answer.message, answer.headers,
                             answer.from_cache ? CacheStatus::kHit : CacheStatus::kMiss);
      co_return;
    }
    const CacheStatus cached = answer.stale ? CacheStatus::kStale : CacheStatus::kHit;
    if (exchange.is_head()) {
      co_await AnswerHead(hub, exchange, FileHead(answer), answer, cached);
      co_return;
    }
    const RangeRequest range =
        ParseRange(ToStd(exchange.request()[http::field::range]), answer.file.size);
    if (range.kind == RangeRequest::Kind::kUnsatisfiable) {
      BlobBody nothing{.size = answer.file.size};
      co_await SendFileBody(hub, exchange, FileHead(answer), range, std::move(nothing), cached);
      co_return;
    }
    if (co_await ServeStored(hub, exchange, range, answer, cached)) co_return;
    // A miss. Starting a download needs to know where the bytes are: ask the
    // Hub once more when the answer came from the cache (a download already
    // running needs nothing).
    if (answer.download_url.empty() && hub.fetches.Find(*answer.file.digest) == nullptr) {
      if (hub.files.offline() || need_download_url) {
        const FileResolver::OfflineReason why = hub.files.offline_reason();
        co_await SendJsonError(exchange, hub.files.offline() ? why.status : HttpStatusFor(Errc::kOffline),
                               hub.files.offline() ? why.message + "; hubcache has not cached this file"
                                                   : "hubcache has not cached this file and cannot reach the Hub",
                               {}, CacheStatus::kMiss);
        co_return;
      }
      need_download_url = true;
      continue;
    }
    if (co_await ServeFetching(hub, exchange, range, ref, answer, token, cached, !started_over)) {
      co_return;
    }
    // The download it joined failed: ask the Hub where the bytes are, and
    // start a download of its own.
    started_over = true;
    need_download_url = true;
  }
  co_await SendJsonError(exchange, HttpStatusFor(core::Errc::kCorrupt),
                         "the Hub did not say where this file's bytes are",
                         CacheStatus::kMiss);
}

}  // namespace hubcache::proxy
