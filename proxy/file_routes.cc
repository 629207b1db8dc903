// ServeFile and the helpers the Hub routes share.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/errc.h"
#include "core/log.h"
#include "proxy/blob_sender.h"
#include "proxy/hub_routes.h"
#include "proxy/relay.h"
#include "proxy/shaping.h"
#include "store/errc.h"

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

net::awaitable<void> SendFileBody(HubContext& hub, Exchange& exchange, http::response_header<> head,
                                  const RangeRequest& range, BlobBody body, CacheStatus cache) {
  head.set("X-Cache", CacheStatusHeader(cache));
  exchange.set_cache(CacheStatusHeader(cache));
  const std::uint64_t sent = co_await SendBlob(exchange, std::move(head), range, std::move(body));
  hub.metrics.CountServed(cache, sent);
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
    co_await SendJsonError(exchange, 502, "The Hub redirected this request away from the Hub",
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

net::awaitable<void> ServeFile(HubContext& hub, Exchange& exchange, FileRef ref) {
  const Secret token = RequestToken(exchange.request());
  bool need_download_url = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
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
    const store::Digest& digest = *answer.file.digest;
    const std::uint64_t size = answer.file.size;
    const CacheStatus cached = answer.stale ? CacheStatus::kStale : CacheStatus::kHit;
    http::response_header<> head = FileHead(answer);

    if (exchange.is_head()) {
      // Metadata only; X-Cache tells whether the bytes are stored. A download
      // whose bytes are verified is being made durable: wait for that (the
      // disk, not the network), so that HIT means "in the store" (prefetch
      // relies on it).
      auto blob = hub.store.index().GetBlob(digest);
      bool present = blob && blob->has_value();
      if (!present) {
        if (std::shared_ptr<Fetch> publishing = hub.fetches.Find(digest);
            publishing != nullptr && publishing->verified()) {
          co_await publishing->WaitDone();
        }
        // Looked up again even when no download was found: one may have
        // committed and left between the lookup above and Find().
        blob = hub.store.index().GetBlob(digest);
        present = blob && blob->has_value();
      }
      head.set("X-Cache", CacheStatusHeader(present ? cached : CacheStatus::kMiss));
      exchange.set_cache(CacheStatusHeader(present ? cached : CacheStatus::kMiss));
      head.result(http::status::ok);
      head.set(http::field::content_length, std::to_string(size));
      co_await exchange.SendHead(head);
      exchange.MarkAnswered(200, 0, exchange.keep_alive());
      co_return;
    }

    const RangeRequest range = ParseRange(ToStd(exchange.request()[http::field::range]), size);
    if (range.kind == RangeRequest::Kind::kUnsatisfiable) {
      BlobBody nothing{.size = size};
      co_await SendFileBody(hub, exchange, std::move(head), range, std::move(nothing), cached);
      co_return;
    }
    if (range.kind == RangeRequest::Kind::kWhole && size <= store::BlobStore::kSmallBlobBytes) {
      if (auto content = hub.store.SmallContent(digest)) {
        BlobBody body{.fd = {}, .size = size, .fetch = {}, .content = std::move(content)};
        co_await SendFileBody(hub, exchange, std::move(head), range, std::move(body), cached);
        co_return;
      }
    }
    auto blob = hub.store.Lookup(digest);
    if (blob) {
      BlobBody body{.fd = std::move(blob->fd), .size = size};
      co_await SendFileBody(hub, exchange, std::move(head), range, std::move(body), cached);
      co_return;
    }
    if (blob.error() != core::Errc::kNotFound) {
      log::Warn(kModule, "blob_unreadable",
                {{"req", exchange.id()}, {"digest", digest.Hex()}, {"error", blob.error().message()}});
    }

    // A miss: join the download in flight, or start one.
    std::shared_ptr<Fetch> fetch = hub.fetches.Find(digest);
    CacheStatus status = CacheStatus::kCoalesced;
    if (fetch == nullptr) {
      if (answer.download_url.empty()) {
        if (hub.files.offline() || need_download_url) {
          co_await SendJsonError(exchange, 503,
                                 "hubcache has not cached this file and cannot reach the Hub",
                                 {}, CacheStatus::kMiss);
          co_return;
        }
        need_download_url = true;
        continue;
      }
      auto joined = hub.fetches.Join(
          digest, size,
          BlobFetch{.download_url = answer.download_url, .resolve_url = answer.resolve_url,
                    .token = token});
      if (!joined && joined.error() == core::Errc::kAlreadyExists) {
        blob = hub.store.Lookup(digest);
        if (blob) {
          BlobBody body{.fd = std::move(blob->fd), .size = size};
          co_await SendFileBody(hub, exchange, std::move(head), range, std::move(body), cached);
          co_return;
        }
      }
      if (!joined) {
        log::Info(kModule, "pass_through",
                  {{"req", exchange.id()}, {"digest", digest.Hex()}, {"bytes", size},
                   {"reason", joined.error().message()}});
        co_await PassThrough(hub, exchange, answer, token);
        co_return;
      }
      fetch = joined->fetch;
      status = joined->started ? CacheStatus::kMiss : CacheStatus::kCoalesced;
    } else if (fetch->verified()) {
      // Every byte is here and verified; only the commit is still running.
      status = cached;
    }
    if (status == CacheStatus::kCoalesced) hub.metrics.CountCoalesced();
    auto reader = fetch->OpenReader();
    if (!reader) {
      // The download ended between Find/Join and here: committed, or failed.
      blob = hub.store.Lookup(digest);
      if (blob) {
        BlobBody body{.fd = std::move(blob->fd), .size = size};
        co_await SendFileBody(hub, exchange, std::move(head), range, std::move(body), cached);
        co_return;
      }
      co_await SendJsonError(exchange, 503, "hubcache cannot read the download in progress",
                             status);
      co_return;
    }
    BlobBody body{.fd = std::move(*reader), .size = size, .fetch = std::move(fetch)};
    co_await SendFileBody(hub, exchange, std::move(head), range, std::move(body), status);
    co_return;
  }
  co_await SendJsonError(exchange, 502, "the Hub did not say where this file's bytes are",
                         CacheStatus::kMiss);
}

}  // namespace hubcache::proxy
