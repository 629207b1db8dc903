#include "proxy/shaping.h"

#include "proxy/exchange.h"

#include <vector>

#include <boost/beast/core/string.hpp>

namespace hubcache::proxy {

void StripXetHeaders(http::fields& fields) {
  std::vector<std::string> doomed;
  for (const auto& field : fields) {
    const beast::string_view name = field.name_string();
    if (name.size() >= 6 && beast::iequals(name.substr(0, 6), "x-xet-")) {
      doomed.emplace_back(name);
    }
  }
  for (const auto& name : doomed) fields.erase(name);
  // Link may appear several times; rebuild it from all values.
  std::vector<std::string> links;
  for (auto it = fields.find(http::field::link); it != fields.end() && it->name() == http::field::link;
       ++it) {
    links.emplace_back(it->value());
  }
  if (links.empty()) return;
  fields.erase(http::field::link);
  for (const std::string& value : links) {
    if (auto kept = StripXetLinks(value)) fields.insert(http::field::link, *kept);
  }
}

http::fields ShapeRelayedHeaders(const http::fields& upstream, std::string_view from_base,
                                 std::string_view to_base) {
  static constexpr std::string_view kDropped[] = {
      "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "te", "trailer",
      "transfer-encoding", "upgrade", "content-length", "x-cache", "set-cookie",
      "strict-transport-security", "alt-svc", "via"};
  http::fields out;
  for (const auto& field : upstream) {
    const beast::string_view name = field.name_string();
    bool dropped = false;
    for (std::string_view d : kDropped) dropped = dropped || beast::iequals(name, ToBeast(d));
    if (dropped) continue;
    std::string value(field.value().data(), field.value().size());
    if (beast::iequals(name, "link")) {
      auto kept = StripXetLinks(value);
      if (!kept) continue;
      value = RewriteLinkBase(*kept, from_base, to_base);
    } else if (beast::iequals(name, "location")) {
      auto moved = RewriteLocation(value, from_base, to_base);
      if (!moved) continue;
      value = std::move(*moved);
    }
    out.insert(name, value);
  }
  StripXetHeaders(out);
  return out;
}

}  // namespace hubcache::proxy
