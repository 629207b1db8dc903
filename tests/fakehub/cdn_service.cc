#include "tests/fakehub/cdn_service.h"

#include <fmt/format.h>

#include "tests/fakehub/http_util.h"

namespace hubcache::fakehub {
namespace {

constexpr std::string_view kBridgePrefix = "/xet-bridge-us/";

Reply XmlError(unsigned status, std::string_view code, std::string_view message) {
  Reply reply;
  reply.status = status;
  reply.Add("Content-Type", "application/xml");
  reply.Add("X-Cache", "Error from cloudfront");
  reply.body = fmt::format(
      "<?xml version=\"1.0\" "
      "encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
      code, message);
  return reply;
}

}  // namespace

Reply CdnService::Handle(const Request& request) {
  const auto [raw_path, query] = SplitTarget(Sv(request.target()));
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    return XmlError(403, "MethodNotAllowed",
                    "The specified method is not allowed against this resource.");
  }
  if (!raw_path.starts_with(kBridgePrefix))
    return XmlError(404, "NoSuchKey", "The specified key does not exist.");
  const std::vector<std::string_view> segments = SplitPath(raw_path.substr(kBridgePrefix.size()));
  if (segments.size() != 2 || segments[0].empty()) {
    return XmlError(404, "NoSuchKey", "The specified key does not exist.");
  }
  const Signer::Checked checked = signer_.Verify(raw_path, ParseQuery(query));
  switch (checked.verdict) {
    case Signer::Verdict::kOk:
      break;
    case Signer::Verdict::kExpired:
      return XmlError(403, "AccessDenied", "Request has expired");
    case Signer::Verdict::kMalformed:
      return XmlError(403, "MissingKey", "Missing Key-Pair-Id query parameter or cookie value");
    case Signer::Verdict::kBadSignature:
      return XmlError(403, "AccessDenied", "Access denied");
  }
  const std::string_view sha256 = segments[1];
  const Content* content = model_.FindLfs(sha256);
  if (content == nullptr) return XmlError(404, "NoSuchKey", "The specified key does not exist.");

  Reply reply = ContentReply(Sv(request[http::field::range]), *content);
  if (reply.status != 416) {
    reply.Add("Content-Type", "application/octet-stream");
    reply.Add("ETag", fmt::format("\"{}\"", sha256));
    reply.Add("Content-Disposition", checked.disposition);
    reply.Add("Cache-Control", "public, max-age=31536000");
    reply.Add("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT");
  }
  reply.Add("X-Cache", "Hit from cloudfront");
  reply.Add("Via", "1.1 fakehub.cloudfront.net (CloudFront)");
  return reply;
}

}  // namespace hubcache::fakehub
