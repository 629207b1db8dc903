#include "proxy/resolve.h"

#include "core/errc.h"
#include "core/log.h"
#include "proxy/errc.h"
#include "proxy/resolve_head.h"

namespace hubcache::proxy {
namespace {

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

net::awaitable<Result<ResolvedFile>> ResolveFile(HubClient& client, std::string resolve_url,
                                                 Secret token) {
  auto first = co_await client.Fetch(Head(resolve_url, token));
  if (!first) co_return Fail(first.error());
  ResolvedFile file;
  file.head = first->head;
  file.status = first->head.status;
  auto reading = ReadResolveHead(resolve_url, first->head.status, [&](std::string_view name) {
    return first->head.Header(name);
  });
  if (!reading) co_return Fail(reading.error());
  if (reading->step == HeadStep::kAskAgain) {
    auto second = co_await client.Fetch(Head(reading->url, token));
    if (!second) co_return Fail(second.error());
    file.head = second->head;
    file.status = second->head.status;
    reading = ReadSecondHead(reading->url, reading->commit, second->head.status,
                             [&](std::string_view name) { return second->head.Header(name); });
    if (!reading) co_return Fail(reading.error());
  }
  file.commit = reading->commit;
  switch (reading->step) {
    case HeadStep::kFound:
      file.status = 200;
      file.etag = std::move(reading->etag);
      file.lfs = reading->lfs;
      file.size = reading->size;
      file.download_url = std::move(reading->url);
      break;
    case HeadStep::kMoved:
      file.moved_to = std::move(reading->url);
      break;
    case HeadStep::kAskAgain:  // not after a second HEAD
    case HeadStep::kRelay:
      break;
  }
  co_return file;
}

}  // namespace hubcache::proxy
