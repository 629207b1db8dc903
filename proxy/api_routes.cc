// ServeApi and ServePassthrough.
#include <fmt/format.h>

#include "core/errc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/offload.h"
#include "proxy/errc.h"
#include "proxy/http_errors.h"
#include "proxy/hub_routes.h"
#include "proxy/offline_docs.h"
#include "proxy/offline_refs.h"
#include "proxy/relay.h"
#include "proxy/shaping.h"

namespace hubcache::proxy {
namespace {

constexpr auto kModule = log::Module::kProxy;

// Request headers passed on to the Hub (besides Authorization).
void CopyRequestHeaders(const Request& request, OutRequest& out) {
  for (http::field f : {http::field::range, http::field::content_type, http::field::accept,
                        http::field::if_none_match, http::field::if_modified_since}) {
    const std::string_view value = ToStd(request[f]);
    if (value.empty()) continue;
    // huggingface.js asks for Xet file info this way; the Hub must not see
    // it, or it answers with Xet instead of bytes (HUB_PROTOCOL.md §6.3).
    if (f == http::field::accept && value.find("xet") != std::string_view::npos) continue;
    out.headers.emplace_back(std::string(ToStd(http::to_string(f))), std::string(value));
  }
}

OutRequest Outgoing(const HubContext& hub, const Request& request) {
  OutRequest out;
  out.method = request.method();
  out.url = hub.upstream_url + std::string(ToStd(request.target()));
  out.token = RequestToken(request);
  out.body = request.body();
  CopyRequestHeaders(request, out);
  return out;
}

bool IsRead(const Request& request) {
  return request.method() == http::verb::get || request.method() == http::verb::head;
}

// What the docs table keys an API request by, within (repo, revision).
std::string DocKey(const Request& request, std::string_view path_and_query) {
  std::string key = fmt::format("{} {}", ToStd(request.method_string()), path_and_query);
  if (request.method() == http::verb::post) {
    key += fmt::format("\n{}\n{}", ToStd(request[http::field::content_type]), request.body());
  }
  return key;
}

net::awaitable<void> SendDoc(HubContext& hub, Exchange& exchange, const store::DocRecord& doc,
                             unsigned status, CacheStatus cache) {
  StringResponse response(static_cast<http::status>(status), exchange.request().version());
  for (const auto& [name, value] : doc.headers) {
    if (!store::IsDocHeader(name, value)) continue;  // written by no version of hubcache
    if (beast::iequals(name, "Link")) {
      // Pagination links lead back here, whatever upstream stored them.
      response.set(name, RewriteLinkBase(value, "", PublicBase(hub, exchange.request())));
    } else {
      response.set(name, value);
    }
  }
  response.set("X-Cache", CacheStatusHeader(cache));
  exchange.set_cache(CacheStatusHeader(cache));
  response.body() = doc.body;
  const std::uint64_t bytes = exchange.is_head() ? 0 : doc.body.size();
  co_await exchange.Send(std::move(response));
  hub.metrics.CountServed(cache, bytes);
}

}  // namespace

net::awaitable<void> ServeApi(HubContext& hub, Exchange& exchange) {
  const Request& request = exchange.request();
  const std::string_view target = ToStd(request.target());
  const std::string_view path = target.substr(0, target.find('?'));
  auto api = ParseApiPath(path);
  if (!api && api.error() == core::Errc::kInvalidArgument) {
    co_await SendJsonError(exchange, 400, "Invalid repository path", CacheStatus::kMiss);
    co_return;
  }
  if (!api) {  // whoami-v2, search, ...: nothing to cache
    co_await ServePassthrough(hub, exchange);
    co_return;
  }
  const bool paths_info = api->route == "paths-info";
  if (!IsRead(request) && !(paths_info && request.method() == http::verb::post)) {
    co_await ServePassthrough(hub, exchange);  // a write
    co_return;
  }
  const Secret token = RequestToken(request);
  const bool documented = api->route.empty() || api->route == "revision" ||
                          api->route == "tree" || paths_info || api->route == "refs";
  // Answers at a commit never change; others are kept for offline use only.
  const bool immutable = documented && api->route != "refs" && store::IsCommitHash(api->revision);
  const std::string doc_revision = api->revision.empty() ? "@" : api->revision;
  const std::string key = DocKey(request, target.substr(5 + store::RepoTypePlural(api->repo.type).size()));
  const bool offline = hub.files.offline();

  auto cached_doc = [&](bool offline_rules) -> std::optional<store::DocRecord> {
    if (!documented || !hub.access.Allows(api->repo, token, offline_rules)) return std::nullopt;
    auto doc = hub.store.index().GetDoc(api->repo, doc_revision, key);
    if (!doc || !*doc) return std::nullopt;
    return std::move(**doc);
  };

  // Without the Hub: the same answer built from what is stored at the
  // commit (proxy/offline_docs.h).
  auto synthesized = [&]() -> std::optional<store::DocRecord> {
    if (!hub.access.Allows(api->repo, token, /*offline=*/true)) return std::nullopt;
    const std::size_t q = target.find('?');
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    auto body = SynthesizeApiAnswer(hub.store.index(), *api, query,
                                    ToStd(request[http::field::content_type]), request.body());
    if (!body) return std::nullopt;
    return store::DocRecord{.body = std::move(*body),
                            .headers = {{"Content-Type", "application/json; charset=utf-8"}},
                            .stored_at = 0};
  };

  if (immutable || offline) {
    if (auto doc = cached_doc(offline)) {
      co_await SendDoc(hub, exchange, *doc, 200, immutable ? CacheStatus::kHit : CacheStatus::kStale);
      co_return;
    }
  }
  if (offline) {
    if (auto doc = synthesized()) {
      co_await SendDoc(hub, exchange, *doc, 200, CacheStatus::kStale);
      co_return;
    }
    // Air-gapped, a branch or tag whose commit was never stored gets the
    // Hub's answer for a revision it does not have (proxy/offline_refs.h).
    const bool at_revision = api->route.empty() || api->route == "revision" ||
                             api->route == "tree" || paths_info;
    const std::string revision = api->revision.empty() ? "main" : api->revision;
    if (at_revision && hub.files.configured_offline() &&
        hub.access.Allows(api->repo, token, /*offline=*/true) &&
        ListedButNotStored(hub.store.index(), api->repo, revision)) {
      const RevisionNotFoundAnswer missing(revision);
      co_await SendJsonError(exchange, missing.status, missing.message, missing.headers,
                             CacheStatus::kHit);
      co_return;
    }
    const FileResolver::OfflineReason why = hub.files.offline_reason();
    co_await SendJsonError(exchange, why.status,
                           why.message + "; hubcache has not cached this answer for this request",
                           {}, CacheStatus::kMiss);
    co_return;
  }

  OutRequest out = Outgoing(hub, request);
  if (paths_info) out.retry = true;  // a read, despite POST
  // A renamed repo answers with a redirect to its new name. It goes to the
  // client, which asks again under the new name: followed here, its answer
  // would be cached under the old one.
  out.follow_redirects = false;
  auto answer = co_await hub.client.Fetch(std::move(out));
  if (answer && answer->head.status >= 300 && answer->head.status < 400) {
    const std::string location = answer->head.Header("location");
    if (location.empty() ||
        !RewriteLocation(location, hub.upstream_url, PublicBase(hub, request))) {
      // Off the Hub (no API route is known to do this): clients must not be
      // sent there, so it is followed here as any other redirect.
      OutRequest again = Outgoing(hub, request);
      if (paths_info) again.retry = true;
      answer = co_await hub.client.Fetch(std::move(again));
    }
  }
  if (!answer || answer->head.status >= 500) {
    std::optional<store::DocRecord> doc = cached_doc(true);
    if (!doc) doc = synthesized();
    if (doc) {
      co_await SendDoc(hub, exchange, *doc, 200, CacheStatus::kStale);
      co_return;
    }
    if (!answer) {
      const std::string message =
          fmt::format("hubcache cannot reach the Hub ({})", answer.error().message());
      co_await SendJsonError(exchange, HttpStatusFor(answer.error()), message,
                             {}, CacheStatus::kMiss);
      co_return;
    }
  }
  hub.metrics.CountUpstreamBytes(answer->body.size());
  store::DocRecord doc;
  doc.body = StripXetHash(answer->body);
  for (std::string_view name : store::kDocHeaderNames) {
    std::string value = answer->head.Header(name);
    if (value.empty()) continue;
    if (name == "Link") {
      auto kept = StripXetLinks(value);
      if (!kept) continue;
      value = *kept;
    }
    if (!store::IsDocHeader(name, value)) continue;
    doc.headers.emplace_back(name, std::move(value));
  }
  if (answer->head.status == 200 && documented && !exchange.is_head()) {
    doc.stored_at = core::UnixSeconds();
    auto put = co_await core::Offload(
        hub.blocking, [&] { return hub.store.index().PutDoc(api->repo, doc_revision, key, doc); });
    if (!put) {
      log::Warn(kModule, "index_write_failed",
                {{"repo", api->repo.name}, {"error", put.error().message()}});
    }
  }
  // Relay everything the Hub said, shaped; the body without xetHash.
  StringResponse response(static_cast<http::status>(answer->head.status), request.version());
  static_cast<http::fields&>(response.base()) =
      ShapeRelayedHeaders(answer->head.fields, hub.upstream_url, PublicBase(hub, request));
  response.result(answer->head.status);
  response.set("X-Cache", CacheStatusHeader(CacheStatus::kMiss));
  exchange.set_cache(CacheStatusHeader(CacheStatus::kMiss));
  response.body() = std::move(doc.body);
  if (exchange.is_head()) {
    const std::string length = answer->head.Header("content-length");
    if (!length.empty()) response.set(http::field::content_length, length);
  }
  const std::uint64_t bytes = exchange.is_head() ? 0 : response.body().size();
  co_await exchange.Send(std::move(response));
  hub.metrics.CountServed(CacheStatus::kMiss, bytes);
}

net::awaitable<void> ServePassthrough(HubContext& hub, Exchange& exchange) {
  const Request& request = exchange.request();
  const bool read = IsRead(request);
  if (!read && !hub.options.allow_writes) {
    co_await SendJsonError(exchange, 405,
                           "hubcache is a read-only cache of the Hub; writes are disabled "
                           "(proxy.allow_writes)",
                           {}, CacheStatus::kMiss);
    co_return;
  }
  if (hub.files.offline()) {
    const FileResolver::OfflineReason why = hub.files.offline_reason();
    co_await SendJsonError(exchange, why.status, why.message + "; hubcache does not cache this route",
                           CacheStatus::kMiss);
    co_return;
  }
  OutRequest out = Outgoing(hub, request);
  out.follow_redirects = read;
  out.retry = read;
  RelaySink sink(exchange, hub.upstream_url, PublicBase(hub, request), CacheStatus::kPass);
  auto result = co_await hub.client.Send(std::move(out), sink);
  co_await sink.Finish(result);
  hub.metrics.CountServed(CacheStatus::kPass, sink.body_bytes());
  hub.metrics.CountUpstreamBytes(sink.body_bytes());
}

}  // namespace hubcache::proxy
