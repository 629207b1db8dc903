#include "proxy/byte_ranges.h"

#include <charconv>
#include <optional>

namespace hubcache::proxy {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> Number(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

RangeRequest Unsatisfiable() { return {RangeRequest::Kind::kUnsatisfiable, {}}; }

}  // namespace

RangeRequest ParseRange(std::string_view value, std::uint64_t total) {
  value = Trim(value);
  if (value.empty()) return {};
  if (!value.starts_with("bytes=")) return Unsatisfiable();
  value.remove_prefix(6);
  RangeRequest request{RangeRequest::Kind::kRanges, {}};
  std::size_t members = 0;
  while (true) {
    const std::size_t comma = value.find(',');
    const std::string_view spec = Trim(value.substr(0, comma));
    if (++members > kMaxRanges) return Unsatisfiable();
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return Unsatisfiable();
    const std::string_view a = spec.substr(0, dash);
    const std::string_view b = spec.substr(dash + 1);
    if (a.empty()) {
      // Suffix: the last n bytes.
      const auto n = Number(b);
      if (!n) return Unsatisfiable();
      if (*n > 0 && total > 0) {
        request.spans.push_back({*n >= total ? 0 : total - *n, total - 1});
      }
    } else {
      const auto first = Number(a);
      const auto last = b.empty() ? std::optional<std::uint64_t>(UINT64_MAX) : Number(b);
      if (!first || !last || *last < *first) return Unsatisfiable();
      if (*first < total) request.spans.push_back({*first, std::min(*last, total - 1)});
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  if (request.spans.empty()) return Unsatisfiable();
  return request;
}

std::string ContentRange(const ByteSpan& span, std::uint64_t total) {
  return "bytes " + std::to_string(span.first) + "-" + std::to_string(span.last) + "/" +
         std::to_string(total);
}

std::string UnsatisfiedContentRange(std::uint64_t total) {
  return "bytes */" + std::to_string(total);
}

std::optional<ContentRangeValue> ParseContentRange(std::string_view value) {
  if (!value.starts_with("bytes ")) return std::nullopt;
  value.remove_prefix(6);
  const std::size_t dash = value.find('-');
  const std::size_t slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return std::nullopt;
  }
  auto number = [](std::string_view t, std::uint64_t& v) {
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return !t.empty() && ec == std::errc() && end == t.data() + t.size();
  };
  ContentRangeValue out;
  if (!number(value.substr(0, dash), out.span.first) ||
      !number(value.substr(dash + 1, slash - dash - 1), out.span.last) ||
      out.span.last < out.span.first) {
    return std::nullopt;
  }
  std::uint64_t total = 0;
  if (number(value.substr(slash + 1), total)) out.total = total;
  return out;
}

}  // namespace hubcache::proxy
