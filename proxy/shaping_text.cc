#include "proxy/shaping_text.h"

#include <algorithm>
#include <vector>

namespace hubcache::proxy {
namespace {

// Splits a Link header value at top-level commas (commas inside <...> or
// quotes belong to the entry).
std::vector<std::string_view> SplitLinkEntries(std::string_view link) {
  std::vector<std::string_view> entries;
  bool in_url = false;
  bool in_quotes = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < link.size(); ++i) {
    const char c = link[i];
    if (c == '<' && !in_quotes) in_url = true;
    else if (c == '>' && !in_quotes) in_url = false;
    else if (c == '"' && !in_url) in_quotes = !in_quotes;
    else if (c == ',' && !in_url && !in_quotes) {
      entries.push_back(link.substr(start, i - start));
      start = i + 1;
    }
  }
  entries.push_back(link.substr(start));
  return entries;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsXetEntry(std::string_view entry) {
  const std::size_t close = entry.find('>');
  const std::string_view params = close == std::string_view::npos ? entry : entry.substr(close);
  for (std::string_view rel : {"xet-auth", "xet-reconstruction-info"}) {
    for (std::size_t at = params.find(rel); at != std::string_view::npos;
         at = params.find(rel, at + 1)) {
      // rel="xet-auth" or rel=xet-auth (as a whole token).
      const char before = at > 0 ? params[at - 1] : ' ';
      const std::size_t end = at + rel.size();
      const char after = end < params.size() ? params[end] : ' ';
      // (Spaces or tabs around it: RFC 9110 whitespace.)
      if ((before == '"' || before == '=' || before == ' ' || before == '\t') &&
          (after == '"' || after == ';' || after == ' ' || after == '\t' || after == ',')) {
        return true;
      }
    }
  }
  return false;
}

// A minimal JSON scanner that finds the byte ranges of `"xetHash": value`
// members. Returns false on malformed input.
class XetHashScanner {
 public:
  explicit XetHashScanner(std::string_view text) : text_(text) {}

  bool Scan() {
    SkipSpace();
    if (!Value()) return false;
    SkipSpace();
    return pos_ == text_.size();
  }
  // [begin, end) ranges to delete, in order, non-overlapping.
  std::vector<std::pair<std::size_t, std::size_t>> cuts;

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool String(std::string_view* out = nullptr) {
    if (pos_ >= text_.size() || text_[pos_] != '"') return false;
    const std::size_t begin = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\') ++pos_;
      ++pos_;
    }
    if (pos_ >= text_.size()) return false;
    if (out != nullptr) *out = text_.substr(begin, pos_ - begin);
    ++pos_;
    return true;
  }
  bool Literal() {
    const std::size_t begin = pos_;
    while (pos_ < text_.size() && std::string_view(",]} \n\r\t").find(text_[pos_]) ==
                                      std::string_view::npos) {
      ++pos_;
    }
    return pos_ > begin;
  }
  bool Value() {
    if (pos_ >= text_.size()) return false;
    switch (text_[pos_]) {
      case '{': return Object();
      case '[': return Array();
      case '"': return String();
      default: return Literal();
    }
  }
  bool Array() {
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') return ++pos_, true;
    for (;;) {
      SkipSpace();
      if (!Value()) return false;
      SkipSpace();
      if (pos_ >= text_.size()) return false;
      if (text_[pos_] == ']') return ++pos_, true;
      if (text_[pos_] != ',') return false;
      ++pos_;
    }
  }
  bool Object() {
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') return ++pos_, true;
    // Start of the previous member's separator, to cut "," + member.
    std::size_t prev_end = std::string_view::npos;
    bool first = true;
    for (;;) {
      SkipSpace();
      const std::size_t member_begin = pos_;
      std::string_view key;
      if (!String(&key)) return false;
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return false;
      ++pos_;
      SkipSpace();
      if (!Value()) return false;
      const std::size_t member_end = pos_;
      SkipSpace();
      if (pos_ >= text_.size()) return false;
      const bool last = text_[pos_] == '}';
      if (key == "xetHash") {
        if (!first) {
          cuts.emplace_back(prev_end, member_end);  // ", \"xetHash\": ..."
        } else if (!last) {
          cuts.emplace_back(member_begin, pos_ + 1);  // "\"xetHash\": ...,"
        } else {
          cuts.emplace_back(member_begin, member_end);
        }
      } else {
        first = false;
      }
      prev_end = member_end;
      if (last) return ++pos_, true;
      if (text_[pos_] != ',') return false;
      ++pos_;
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string NextLinkUrl(std::string_view link) {
  for (std::string_view entry : SplitLinkEntries(link)) {
    entry = Trim(entry);
    const std::size_t close = entry.find('>');
    if (!entry.starts_with('<') || close == std::string_view::npos) continue;
    const std::string_view params = entry.substr(close + 1);
    if (params.find("rel=\"next\"") != std::string_view::npos ||
        params.find("rel=next") != std::string_view::npos) {
      return std::string(entry.substr(1, close - 1));
    }
  }
  return {};
}

std::optional<std::string> StripXetLinks(std::string_view link) {
  std::string out;
  for (std::string_view entry : SplitLinkEntries(link)) {
    entry = Trim(entry);
    if (entry.empty() || IsXetEntry(entry)) continue;
    if (!out.empty()) out += ", ";
    out += entry;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::string RewriteLinkBase(std::string_view link, std::string_view from_base,
                            std::string_view to_base) {
  std::string out;
  std::size_t pos = 0;
  while (pos < link.size()) {
    const std::size_t open = link.find('<', pos);
    if (open == std::string_view::npos) break;
    const std::size_t close = link.find('>', open);
    if (close == std::string_view::npos) break;
    out.append(link.substr(pos, open + 1 - pos));
    std::string_view url = link.substr(open + 1, close - open - 1);
    std::size_t base_size = from_base.size();
    bool matches = url.starts_with(from_base) &&
                   (url.size() == from_base.size() || url[from_base.size()] == '/' ||
                    url[from_base.size()] == '?');
    if (from_base.empty()) {  // any http(s) origin
      const std::size_t scheme = url.find("://");
      matches = (url.starts_with("http://") || url.starts_with("https://")) &&
                scheme != std::string_view::npos;
      if (matches) base_size = std::min(url.find_first_of("/?", scheme + 3), url.size());
    }
    if (matches) {
      out.append(to_base);
      out.append(url.substr(base_size));
    } else {
      out.append(url);
    }
    out += '>';
    pos = close + 1;
  }
  out.append(link.substr(pos));
  return out;
}

std::string StripXetHash(std::string_view json) {
  if (json.find("\"xetHash\"") == std::string_view::npos) return std::string(json);
  XetHashScanner scanner(json);
  if (!scanner.Scan()) return std::string(json);
  std::string out;
  out.reserve(json.size());
  std::size_t pos = 0;
  for (const auto& [begin, end] : scanner.cuts) {
    out.append(json.substr(pos, begin - pos));
    pos = end;
  }
  out.append(json.substr(pos));
  return out;
}

std::optional<std::string> RewriteLocation(std::string_view location, std::string_view from_base,
                                           std::string_view to_base) {
  while (to_base.ends_with('/')) to_base.remove_suffix(1);
  while (from_base.ends_with('/')) from_base.remove_suffix(1);
  if (location.starts_with("//")) return std::nullopt;  // another host, scheme-relative
  if (location.starts_with('/')) {
    // The path of to_base, if any, goes in front.
    std::string_view prefix;
    if (const std::size_t scheme = to_base.find("://"); scheme != std::string_view::npos) {
      const std::size_t slash = to_base.find('/', scheme + 3);
      if (slash != std::string_view::npos) prefix = to_base.substr(slash);
    }
    return std::string(prefix) + std::string(location);
  }
  const std::size_t colon = location.find(':');
  const std::size_t delimiter = location.find_first_of("/?#");
  const bool has_scheme = colon != std::string_view::npos && colon < delimiter;
  if (!has_scheme) return std::string(location);  // relative to the request's own URL
  const bool on_hub = !from_base.empty() && location.starts_with(from_base) &&
                      (location.size() == from_base.size() || location[from_base.size()] == '/' ||
                       location[from_base.size()] == '?');
  if (!on_hub) return std::nullopt;
  return std::string(to_base) + std::string(location.substr(from_base.size()));
}

}  // namespace hubcache::proxy
