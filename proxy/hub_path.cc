#include "proxy/hub_path.h"

#include <cctype>
#include <cstdint>
#include <vector>

#include "core/errc.h"

namespace hubcache::proxy {
namespace {

constexpr std::size_t kMaxRepoPart = 96;
constexpr std::size_t kMaxRevision = 256;
constexpr std::size_t kMaxPathSegment = 255;
constexpr std::size_t kMaxPath = 4096;

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t slash = s.find('/');
    parts.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) break;
    s.remove_prefix(slash + 1);
  }
  return parts;
}

bool ValidRepoPart(std::string_view part) {
  if (part.empty() || part.size() > kMaxRepoPart || part == "." || part == "..") return false;
  for (char c : part) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

bool ValidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and out-of-range code points are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool HasControl(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A branch, tag or commit: git's ref-name rules (check-ref-format), which
// also keep anything path-like out.
bool ValidRevision(std::string_view rev) {
  if (rev.empty() || rev.size() > kMaxRevision || HasControl(rev) || !ValidUtf8(rev)) return false;
  if (rev.find("..") != std::string_view::npos || rev.find("//") != std::string_view::npos ||
      rev.find("@{") != std::string_view::npos || rev.front() == '/' || rev.back() == '/' ||
      rev.back() == '.' || rev == "@") {
    return false;
  }
  return rev.find_first_of(" ~^:?*[\\") == std::string_view::npos;
}

bool ValidFilePath(std::string_view path) {
  if (path.empty() || path.size() > kMaxPath || HasControl(path) || !ValidUtf8(path)) return false;
  for (std::string_view segment : Split(path)) {
    if (segment.empty() || segment == "." || segment == ".." || segment.size() > kMaxPathSegment) {
      return false;
    }
  }
  return true;
}

// Decodes and validates the revision and file path of a FileRef.
Result<FileRef> Finish(store::RepoType type, std::string_view repo, std::string_view raw_rev,
                       std::string_view raw_path) {
  FileRef ref;
  ref.repo = {type, std::string(repo)};
  auto rev = PercentDecode(raw_rev);
  auto path = PercentDecode(raw_path);
  if (!rev || !path || !ValidRevision(*rev) || !ValidFilePath(*path)) {
    return Fail(core::Errc::kInvalidArgument);
  }
  ref.revision = std::move(*rev);
  ref.path = std::move(*path);
  return ref;
}

// API paths name the type in the plural only.
std::optional<store::RepoType> TypeFromPlural(std::string_view plural) {
  if (!plural.ends_with('s')) return std::nullopt;
  return store::ParseRepoType(plural);
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(in[i + 1]);
    const int lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi << 4 | lo);
    i += 2;
  }
  return out;
}

std::string PercentEncode(std::string_view in, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

Result<FileRef> ParseResolvePath(std::string_view raw_path) {
  if (!raw_path.starts_with('/')) return Fail(core::Errc::kNotFound);
  std::vector<std::string_view> parts = Split(raw_path.substr(1));
  store::RepoType type = store::RepoType::kModel;
  std::size_t at = 0;
  if (!parts.empty() && (parts[0] == "datasets" || parts[0] == "spaces")) {
    type = parts[0] == "datasets" ? store::RepoType::kDataset : store::RepoType::kSpace;
    at = 1;
  }
  // `resolve` is the 2nd or 3rd segment after the prefix: legacy repos have
  // no namespace ("gpt2"), others have one ("org/name").
  std::size_t resolve = 0;
  for (std::size_t i = at + 1; i <= at + 2 && i < parts.size(); ++i) {
    if (parts[i] == "resolve") {
      resolve = i;
      break;
    }
  }
  if (resolve == 0) return Fail(core::Errc::kNotFound);
  if (resolve + 2 >= parts.size()) {
    return Fail(core::Errc::kInvalidArgument);  // no revision or no path
  }
  std::string repo;
  for (std::size_t i = at; i < resolve; ++i) {
    if (!ValidRepoPart(parts[i])) return Fail(core::Errc::kInvalidArgument);
    if (!repo.empty()) repo += '/';
    repo += parts[i];
  }
  const std::size_t rev_index = resolve + 1;
  std::string_view raw_rev = parts[rev_index];
  std::size_t path_index = rev_index + 1;
  // An unencoded refs/pr/N or refs/convert/X is one revision.
  if (raw_rev == "refs" && path_index + 1 < parts.size() &&
      (parts[path_index] == "pr" || parts[path_index] == "convert")) {
    raw_rev = std::string_view(parts[rev_index].data(),
                               parts[path_index + 1].data() + parts[path_index + 1].size() -
                                   parts[rev_index].data());
    path_index += 2;
  }
  if (path_index >= parts.size()) return Fail(core::Errc::kInvalidArgument);
  const char* path_begin = parts[path_index].data();
  const std::string_view raw_file(path_begin, raw_path.data() + raw_path.size() - path_begin);
  return Finish(type, repo, raw_rev, raw_file);
}

Result<FileRef> ParseResolveCachePath(std::string_view raw_path) {
  constexpr std::string_view kPrefix = "/api/resolve-cache/";
  if (!raw_path.starts_with(kPrefix)) return Fail(core::Errc::kNotFound);
  std::vector<std::string_view> parts = Split(raw_path.substr(kPrefix.size()));
  auto type = parts.empty() ? std::nullopt : TypeFromPlural(parts[0]);
  if (!type) return Fail(core::Errc::kInvalidArgument);
  // The commit is the first 40-hex segment after one or two repo segments.
  for (std::size_t c = 2; c <= 3 && c + 1 < parts.size(); ++c) {
    if (!store::IsCommitHash(parts[c])) continue;
    std::string repo;
    for (std::size_t i = 1; i < c; ++i) {
      if (!ValidRepoPart(parts[i])) return Fail(core::Errc::kInvalidArgument);
      if (!repo.empty()) repo += '/';
      repo += parts[i];
    }
    const char* path_begin = parts[c + 1].data();
    return Finish(*type, repo, parts[c],
                  std::string_view(path_begin, raw_path.data() + raw_path.size() - path_begin));
  }
  return Fail(core::Errc::kInvalidArgument);
}

Result<ApiRef> ParseApiPath(std::string_view raw_path) {
  constexpr std::string_view kPrefix = "/api/";
  if (!raw_path.starts_with(kPrefix)) return Fail(core::Errc::kNotFound);
  std::vector<std::string_view> parts = Split(raw_path.substr(kPrefix.size()));
  auto type = parts.empty() ? std::nullopt : TypeFromPlural(parts[0]);
  if (!type || parts.size() < 2) return Fail(core::Errc::kNotFound);
  static constexpr std::string_view kRevisionRoutes[] = {"revision", "tree", "paths-info",
                                                          "commits", "xet-read-token"};
  static constexpr std::string_view kOtherRoutes[] = {"refs", "treesize", "discussions",
                                                       "settings", "commit", "preupload",
                                                       "lfs-files", "notebook", "scan"};
  auto is_route = [&](std::string_view s) {
    for (auto r : kRevisionRoutes) {
      if (s == r) return true;
    }
    for (auto r : kOtherRoutes) {
      if (s == r) return true;
    }
    return false;
  };
  // Legacy repos have no namespace: `/api/models/gpt2/tree/main`.
  // `org/name` unless the segment after the first is a route.
  const std::size_t name_parts = parts.size() >= 3 && !is_route(parts[2]) ? 2 : 1;
  ApiRef ref;
  ref.repo.type = *type;
  for (std::size_t i = 1; i <= name_parts && i < parts.size(); ++i) {
    if (!ValidRepoPart(parts[i])) return Fail(core::Errc::kInvalidArgument);
    if (!ref.repo.name.empty()) ref.repo.name += '/';
    ref.repo.name += parts[i];
  }
  std::size_t at = 1 + name_parts;
  if (at >= parts.size()) return ref;
  ref.route = std::string(parts[at++]);
  bool takes_revision = false;
  for (auto r : kRevisionRoutes) takes_revision = takes_revision || ref.route == r;
  if (!takes_revision || at >= parts.size()) return ref;
  const std::size_t rev_index = at;
  std::string_view raw_rev = parts[at++];
  if (raw_rev == "refs" && at + 1 < parts.size() && (parts[at] == "pr" || parts[at] == "convert")) {
    raw_rev = std::string_view(parts[rev_index].data(),
                               parts[at + 1].data() + parts[at + 1].size() - parts[rev_index].data());
    at += 2;
  }
  auto rev = PercentDecode(raw_rev);
  if (!rev || !ValidRevision(*rev)) return Fail(core::Errc::kInvalidArgument);
  ref.revision = std::move(*rev);
  if (at < parts.size()) {
    const char* begin = parts[at].data();
    auto rest = PercentDecode(std::string_view(begin, raw_path.data() + raw_path.size() - begin));
    if (!rest || (!rest->empty() && !ValidFilePath(*rest))) return Fail(core::Errc::kInvalidArgument);
    ref.rest = std::move(*rest);
  }
  return ref;
}

}  // namespace hubcache::proxy
