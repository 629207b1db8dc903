#include "tests/fakehub/reply.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/fakehub/http_util.h"

namespace hubcache::fakehub {

Reply JsonReply(unsigned status, std::string json) {
  Reply reply;
  reply.status = status;
  reply.Add("Content-Type", "application/json; charset=utf-8");
  reply.body = std::move(json);
  return reply;
}

Reply ErrorReply(unsigned status, std::string_view code, std::string_view message) {
  Reply reply = JsonReply(status, nlohmann::json{{"error", message}}.dump());
  if (!code.empty()) reply.Add("X-Error-Code", std::string(code));
  reply.Add("X-Error-Message", HeaderSafe(message));
  return reply;
}

Reply ContentReply(std::string_view range, const Content& content) {
  Reply reply;
  const std::uint64_t size = content.size();
  const ByteRange r = ParseRange(range, size);
  reply.Add("Accept-Ranges", "bytes");
  switch (r.kind) {
    case ByteRange::Kind::kUnsatisfiable:
      reply.status = 416;
      reply.Add("Content-Range", fmt::format("bytes */{}", size));
      reply.Add("Content-Type", "text/plain; charset=utf-8");
      reply.body = "Requested Range Not Satisfiable";
      return reply;
    case ByteRange::Kind::kPartial:
      reply.status = 206;
      reply.Add("Content-Range", fmt::format("bytes {}-{}/{}", r.first, r.last, size));
      reply.content = &content;
      reply.offset = r.first;
      reply.length = r.last - r.first + 1;
      return reply;
    case ByteRange::Kind::kWhole:
      break;
  }
  reply.status = 200;
  reply.content = &content;
  reply.offset = 0;
  reply.length = size;
  return reply;
}

std::string HeaderSafe(std::string_view text) {
  std::string out;
  for (char c : text) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace hubcache::fakehub
