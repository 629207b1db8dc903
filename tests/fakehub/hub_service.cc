#include "tests/fakehub/hub_service.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/fakehub/http_util.h"

namespace hubcache::fakehub {
namespace {

constexpr std::string_view kXetFileInfoType = "application/vnd.xet-fileinfo+json";
constexpr std::string_view kCasUrl = "https://cas-server.xethub.hf.co";
constexpr std::string_view kExposeHeaders =
    "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,"
    "Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash";

// Route words that follow a repo id; a one-segment (legacy) id is assumed
// when one of them comes second.
constexpr std::array<std::string_view, 9> kRouteWords = {"resolve",        "raw",        "revision",
                                                         "tree",           "paths-info", "refs",
                                                         "xet-read-token", "commits",    "blob"};

bool IsRouteWord(std::string_view segment) {
  return std::find(kRouteWords.begin(), kRouteWords.end(), segment) != kRouteWords.end();
}

std::string Decode(std::string_view raw) { return PercentDecode(raw).value_or(std::string(raw)); }

std::string_view BaseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string ContentTypeFor(std::string_view path) {
  const std::string_view name = BaseName(path);
  const auto dot = name.rfind('.');
  const std::string ext = dot == std::string_view::npos ? "" : ToLower(name.substr(dot + 1));
  if (ext == "json") return "application/json; charset=utf-8";
  if (ext == "txt" || ext == "md" || ext == "py" || ext == "csv" || ext == "gitattributes" ||
      ext == "yaml" || ext == "yml" || ext == "toml") {
    return "text/plain; charset=utf-8";
  }
  return "application/octet-stream";
}

// inline; filename*=UTF-8''<encoded>; filename="<ascii>";  as the Hub sends.
std::string Disposition(std::string_view path) {
  const std::string_view name = BaseName(path);
  std::string ascii;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    ascii += (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') ? c : '_';
  }
  return fmt::format("inline; filename*=UTF-8''{}; filename=\"{}\";", PercentEncode(name, false),
                     ascii);
}

std::string RepoPrefix(RepoType type) {
  return type == RepoType::kModel ? "" : std::string(TypePlural(type)) + "/";
}

// An opaque id per repo in bridge URLs, like the Hub's.
std::string BridgeId(const Repo& repo) { return Sha256Hex("bridge:" + repo.Key()).substr(0, 24); }

Reply NotFoundPage() {
  return JsonReply(404, R"({"error":"Sorry, we can't find the page you are looking for."})");
}

Reply MethodNotAllowed() { return JsonReply(405, R"({"error":"Method not allowed"})"); }

Reply BadRequest(std::string_view message) { return ErrorReply(400, "", message); }

Reply RevisionNotFound(std::string_view revision) {
  return ErrorReply(404, "RevisionNotFound", fmt::format("Invalid rev id: {}", revision));
}

bool IsRead(const Request& request) {
  return request.method() == http::verb::get || request.method() == http::verb::head;
}

}  // namespace

std::optional<std::string> BearerToken(const Request& request) {
  const auto it = request.find(http::field::authorization);
  if (it == request.end()) return std::string();
  std::string_view value(it->value().data(), it->value().size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.empty()) return std::string();
  if (value.size() < 7 || ToLower(value.substr(0, 7)) != "bearer ") return std::nullopt;
  value.remove_prefix(7);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

std::optional<std::string> DecodeJoined(std::span<const std::string_view> segments) {
  std::string out;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    auto decoded = PercentDecode(segments[i]);
    if (!decoded) return std::nullopt;
    if (i > 0) out += '/';
    out += *decoded;
  }
  return out;
}

Reply HubService::Handle(const Request& request) {
  Reply reply = Route(request);
  if (!reply.control) {
    std::uint64_t z = request_counter_.fetch_add(1) * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    reply.Add("X-Powered-By", "huggingface-moon");
    reply.Add("Vary", "Origin, Accept");
    reply.Add("Access-Control-Expose-Headers", std::string(kExposeHeaders));
    reply.Add("X-Request-Id", fmt::format("Root=1-{:016x}", z ^ (z >> 31)));
  }
  return reply;
}

Reply HubService::Route(const Request& request) {
  const auto [raw_path, query_text] = SplitTarget(Sv(request.target()));
  const Params query = ParseQuery(query_text);
  const std::vector<std::string_view> all = SplitPath(raw_path);
  const Segments segments(all);
  if (segments.empty() || segments[0].empty()) return NotFoundPage();
  if (segments[0] == "_fake") return Control(request, segments.subspan(1), query);
  if (segments[0] == "api") return Api(request, segments.subspan(1), query);

  RepoType type = RepoType::kModel;
  Segments rest = segments;
  if (segments[0] == "datasets" || segments[0] == "spaces") {
    type = segments[0] == "datasets" ? RepoType::kDataset : RepoType::kSpace;
    rest = segments.subspan(1);
  }
  const auto [id, used] = MatchRepo(type, rest);
  if (used == 0 || rest.size() <= used) return NotFoundPage();
  if (rest[used] == "resolve" || rest[used] == "raw") {
    if (auto moved = Renamed(request, type, id, rest.subspan(0, used))) return *moved;
    return Resolve(request, type, id, rest[used] == "raw", rest.subspan(used + 1));
  }
  return NotFoundPage();
}

std::optional<Reply> HubService::Renamed(const Request& request, RepoType type,
                                         const std::string& id, Segments id_segments) const {
  const Repo* repo = model_.FindRenamed(type, id);
  if (repo == nullptr) return std::nullopt;
  // Nobody learns where a private repo went unless it would let them in.
  const auto token = BearerToken(request);
  if (!token || (!token->empty() && !model_.IsValidToken(*token))) {
    return ErrorReply(401, "", "Invalid credentials in Authorization header");
  }
  const Model::Access access = model_.AccessOf(*repo);
  if (access.deleted || (access.is_private && (token->empty() || !access.tokens.contains(*token)))) {
    return ErrorReply(token->empty() ? 401 : 404, "RepoNotFound", "Repository not found");
  }
  // The same path and query with the id swapped: a relative Location, as
  // the Hub sends (HUB_PROTOCOL.md §2.3, "Renamed repo").
  const std::string_view target = Sv(request.target());
  const auto begin = static_cast<std::size_t>(id_segments.front().data() - target.data());
  const auto end =
      static_cast<std::size_t>(id_segments.back().data() + id_segments.back().size() - target.data());
  const std::string location =
      std::string(target.substr(0, begin)) + repo->id + std::string(target.substr(end));
  Reply reply;
  reply.status = 307;
  reply.Add("Location", location);
  reply.Add("Content-Type", "text/plain; charset=utf-8");
  reply.body = "Temporary Redirect. Redirecting to " + location;
  return reply;
}

std::pair<std::string, std::size_t> HubService::MatchRepo(RepoType type, Segments segments) const {
  if (segments.empty() || segments[0].empty()) return {"", 0};
  auto known = [&](const std::string& id) {
    return model_.FindRepo(type, id) != nullptr || model_.FindRenamed(type, id) != nullptr;
  };
  if (segments.size() >= 2) {
    std::string two = Decode(segments[0]) + "/" + Decode(segments[1]);
    if (known(two)) return {two, 2};
  }
  std::string one = Decode(segments[0]);
  if (known(one)) return {one, 1};
  // Unknown repo: namespace/name unless the second segment is a route word.
  if (segments.size() >= 2 && !IsRouteWord(segments[1])) {
    return {one + "/" + Decode(segments[1]), 2};
  }
  return {one, 1};
}

std::pair<std::string, std::size_t> HubService::MatchRevision(const Repo& repo, Segments segments,
                                                              bool join_refs) const {
  if (segments.empty()) return {"", 0};
  std::string first = Decode(segments[0]);
  if (first == "refs" && segments.size() >= 3 &&
      (segments[1] == "pr" || segments[1] == "convert" || segments[1] == "heads" ||
       segments[1] == "tags")) {
    return {"refs/" + Decode(segments[1]) + "/" + Decode(segments[2]), 3};
  }
  if (!join_refs || model_.Resolve(repo, first) != nullptr) return {first, 1};
  // An unencoded branch or tag containing '/' (JS listFiles sends raw).
  std::string joined = first;
  for (std::size_t n = 2; n <= segments.size(); ++n) {
    joined += "/" + Decode(segments[n - 1]);
    if (model_.IsRefName(repo, joined)) return {joined, n};
  }
  return {first, 1};
}

std::string HubService::HostUrl(const Request& request) const {
  const auto host = request[http::field::host];
  if (host.empty()) return config_.hub_url;
  return fmt::format("{}://{}", config_.tls ? "https" : "http",
                     std::string_view(host.data(), host.size()));
}

const Repo* HubService::Authorize(const Request& request, RepoType type, const std::string& id,
                                  Reply& error) const {
  const auto token = BearerToken(request);
  if (!token || (!token->empty() && !model_.IsValidToken(*token))) {
    error = ErrorReply(401, "", "Invalid credentials in Authorization header");
    return nullptr;
  }
  const bool anonymous = token->empty();
  const Repo* repo = model_.FindRepo(type, id);
  const Model::Access access = repo != nullptr ? model_.AccessOf(*repo) : Model::Access{};
  const bool granted = repo != nullptr && !anonymous && access.tokens.contains(*token);
  if (repo == nullptr || access.deleted || (access.is_private && !granted)) {
    // A private repo is indistinguishable from a missing one.
    error = ErrorReply(anonymous ? 401 : 404, "RepoNotFound", "Repository not found");
    return nullptr;
  }
  if (repo->disabled) {
    error = ErrorReply(403, "", "Access to this resource is disabled.");
    return nullptr;
  }
  if (repo->gated != Gating::kNone && !granted) {
    if (anonymous) {
      error =
          ErrorReply(401, "GatedRepo",
                     fmt::format("Access to {} {} is restricted. You must have access to it and be "
                                 "authenticated to access it. Please log in.",
                                 TypeName(type), id));
    } else {
      error =
          ErrorReply(403, "GatedRepo",
                     fmt::format("Access to {} {} is restricted and you are not in the authorized "
                                 "list. Visit https://huggingface.co/{}{} to ask for access.",
                                 TypeName(type), id, RepoPrefix(type), id));
    }
    return nullptr;
  }
  return repo;
}

Reply HubService::Resolve(const Request& request, RepoType type, const std::string& repo_id,
                          bool raw, Segments rest) {
  if (!IsRead(request)) return MethodNotAllowed();
  Reply error;
  const Repo* repo = Authorize(request, type, repo_id, error);
  if (repo == nullptr) return error;
  const auto [revision, used] = MatchRevision(*repo, rest, false);
  const fakehub::Commit* commit = model_.Resolve(*repo, revision);
  if (commit == nullptr) return RevisionNotFound(revision);
  const auto path = DecodeJoined(rest.subspan(used));
  if (!path) return BadRequest("Invalid path encoding");
  const File* file = path->empty() ? nullptr : commit->FindFile(*path);
  if (file == nullptr) {
    Reply missing = ErrorReply(404, "EntryNotFound", "Entry not found");
    missing.Add("X-Repo-Commit", commit->sha);
    return missing;
  }
  if (raw) {
    // The git blob: for an LFS file, its pointer (HUB_PROTOCOL.md §2.2).
    const Content& blob = file->lfs ? *file->pointer : *file->content;
    Reply reply = ContentReply(Sv(request[http::field::range]), blob);
    reply.Add("X-Repo-Commit", commit->sha);
    if (reply.status != 416) {
      reply.Add("ETag", fmt::format("\"{}\"", file->oid));
      reply.Add("Content-Type", "text/plain; charset=utf-8");
    }
    return reply;
  }
  if (file->lfs) {
    const auto accept = request[http::field::accept];
    if (config_.xet && std::string_view(accept.data(), accept.size()).find(kXetFileInfoType) !=
                           std::string_view::npos) {
      return XetFileInfo(request, *repo, *commit, *file);
    }
  }
  return Redirect(request, *repo, *commit, revision, *file);
}

Reply HubService::Redirect(const Request& request, const Repo& repo, const fakehub::Commit& commit,
                           std::string_view revision, const File& file) {
  Reply reply;
  std::string location;
  reply.Add("X-Repo-Commit", commit.sha);
  reply.Add("Accept-Ranges", "bytes");
  if (!file.lfs) {
    // Relative, into the CDN-fronted resolve cache (HUB_PROTOCOL.md §2.3).
    const std::string original =
        fmt::format("/{}{}/resolve/{}/{}", RepoPrefix(repo.type), repo.id, revision, file.path);
    location = fmt::format(
        "/api/resolve-cache/{}/{}/{}/{}?{}=&etag=%22{}%22", TypePlural(repo.type), repo.id,
        commit.sha, PercentEncode(file.path, true), PercentEncode(original, false), file.oid);
    reply.status = 307;
    reply.Add("ETag", fmt::format("\"{}\"", file.oid));
    reply.body = "Temporary Redirect. Redirecting to " + location;
  } else {
    // Absolute, signed, expiring, to the CDN listener.
    const std::string bridge_path =
        fmt::format("/xet-bridge-us/{}/{}", BridgeId(repo), file.sha256);
    location = config_.cdn_url + bridge_path + "?" +
               signer_.Sign(bridge_path, Disposition(file.path), knobs_.signed_url_ttl());
    reply.status = 302;
    reply.Add("ETag", fmt::format("\"{}\"", file.oid));
    reply.Add("X-Linked-Etag", fmt::format("\"{}\"", file.sha256));
    reply.Add("X-Linked-Size", std::to_string(file.size()));
    if (config_.xet) {
      reply.Add("X-Xet-Hash", file.xet_hash);
      reply.Add("Link", fmt::format("<{}/api/{}/{}/xet-read-token/{}>; rel=\"xet-auth\", "
                                    "<{}/v1/reconstructions/{}>; rel=\"xet-reconstruction-info\"",
                                    HostUrl(request), TypePlural(repo.type), repo.id, commit.sha,
                                    kCasUrl, file.xet_hash));
    }
    reply.body = "Found. Redirecting to " + location;
  }
  reply.Add("Location", location);
  reply.Add("Content-Type", "text/plain; charset=utf-8");
  return reply;
}

Reply HubService::XetFileInfo(const Request& request, const Repo& repo,
                              const fakehub::Commit& commit, const File& file) {
  const std::string refresh = fmt::format("{}/api/{}/{}/xet-read-token/{}", HostUrl(request),
                                          TypePlural(repo.type), repo.id, commit.sha);
  nlohmann::ordered_json doc;
  doc["casUrl"] = kCasUrl;
  doc["hash"] = file.xet_hash;
  doc["refreshUrl"] = refresh;
  doc["size"] = std::to_string(file.size());
  doc["etag"] = file.sha256;
  Reply reply;
  reply.status = 200;
  reply.Add("Content-Type", std::string(kXetFileInfoType));
  reply.Add("X-Repo-Commit", commit.sha);
  reply.Add("ETag", fmt::format("\"{}\"", file.oid));
  reply.Add("X-Linked-Etag", fmt::format("\"{}\"", file.sha256));
  reply.Add("X-Linked-Size", std::to_string(file.size()));
  reply.Add("X-Xet-Hash", file.xet_hash);
  reply.Add("Link", fmt::format("<{}>; rel=\"xet-auth\", <{}/v1/reconstructions/{}>; "
                                "rel=\"xet-reconstruction-info\"",
                                refresh, kCasUrl, file.xet_hash));
  reply.body = doc.dump();
  return reply;
}

Reply HubService::ResolveCache(const Request& request, Segments segments) {
  if (!IsRead(request)) return MethodNotAllowed();
  if (segments.empty()) return NotFoundPage();
  const auto type = ParseRepoType(segments[0]);
  if (!type || segments[0] != TypePlural(*type)) return NotFoundPage();
  const Segments rest = segments.subspan(1);
  const auto [id, used] = MatchRepo(*type, rest);
  if (used == 0) return NotFoundPage();
  if (auto moved = Renamed(request, *type, id, rest.subspan(0, used))) return *moved;
  Reply error;
  const Repo* repo = Authorize(request, *type, id, error);
  if (repo == nullptr) return error;
  const auto [revision, rev_used] = MatchRevision(*repo, rest.subspan(used), false);
  const fakehub::Commit* commit = model_.Resolve(*repo, revision);
  if (commit == nullptr) return RevisionNotFound(revision);
  const auto path = DecodeJoined(rest.subspan(used + rev_used));
  if (!path) return BadRequest("Invalid path encoding");
  const File* file = path->empty() ? nullptr : commit->FindFile(*path);
  if (file == nullptr) {
    Reply missing = ErrorReply(404, "EntryNotFound", "Entry not found");
    missing.Add("X-Repo-Commit", commit->sha);
    return missing;
  }
  Reply reply = ContentReply(Sv(request[http::field::range]), *file->content);
  reply.Add("X-Repo-Commit", commit->sha);
  if (reply.status != 416) {
    reply.Add("ETag", fmt::format("\"{}\"", file->etag()));
    reply.Add("Content-Type", ContentTypeFor(file->path));
    reply.Add("Content-Disposition", Disposition(file->path));
  }
  return reply;
}

Reply HubService::Api(const Request& request, Segments segments, const Params& query) {
  if (segments.empty()) return NotFoundPage();
  if (segments[0] == "whoami-v2" && segments.size() == 1) {
    return IsRead(request) ? WhoAmI(request) : MethodNotAllowed();
  }
  if (segments[0] == "resolve-cache") return ResolveCache(request, segments.subspan(1));
  const auto type = ParseRepoType(segments[0]);
  if (!type || segments[0] != TypePlural(*type) || segments.size() < 2) return NotFoundPage();
  const Segments rest = segments.subspan(1);
  const auto [id, used] = MatchRepo(*type, rest);
  if (used == 0) return NotFoundPage();
  const Segments tail = rest.subspan(used);
  const std::string_view route = tail.empty() ? std::string_view() : tail[0];
  const bool known = route.empty() || route == "revision" || route == "tree" ||
                     route == "paths-info" || route == "refs" || route == "xet-read-token" ||
                     route == "commits";
  if (!known) return NotFoundPage();
  if (route == "paths-info" ? request.method() != http::verb::post : !IsRead(request)) {
    return MethodNotAllowed();
  }
  if (auto moved = Renamed(request, *type, id, rest.subspan(0, used))) return *moved;

  Reply error;
  const Repo* repo = Authorize(request, *type, id, error);
  if (repo == nullptr) return error;
  if (route == "refs") return RefsDoc(*repo, query);

  std::string revision = "main";
  Segments after;
  if (route == "tree") {
    const auto [rev, rev_used] = MatchRevision(*repo, tail.subspan(1), true);
    revision = rev;
    after = tail.subspan(1 + rev_used);
  } else if (!route.empty()) {
    // revision/, paths-info/, xet-read-token/, commits/: the rest is the
    // revision, encoded (Python, JS) or not.
    const auto rev = DecodeJoined(tail.subspan(1));
    if (!rev) return BadRequest("Invalid revision encoding");
    revision = *rev;
  }
  const fakehub::Commit* commit = model_.Resolve(*repo, revision);
  if (commit == nullptr) return RevisionNotFound(revision);

  if (route.empty() || route == "revision") return RepoInfo(*repo, *commit, query);
  if (route == "paths-info") return PathsInfo(request, *commit);
  if (route == "xet-read-token") return XetReadToken(*repo, *commit);
  if (route == "commits") return Commits(*commit);
  auto dir = DecodeJoined(after);
  if (!dir) return BadRequest("Invalid path encoding");
  while (!dir->empty() && dir->back() == '/') dir->pop_back();
  return Tree(request, *commit, *dir, query);
}

}  // namespace hubcache::fakehub
