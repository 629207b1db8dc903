// The JSON documents of the fake Hub's API (HUB_PROTOCOL.md §1.4-§1.6), part
// of HubService.
#include <algorithm>
#include <chrono>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/fakehub/http_util.h"
#include "tests/fakehub/hub_service.h"

namespace hubcache::fakehub {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::size_t kPageSize = 1000;
constexpr std::size_t kExpandedPageSize = 50;
constexpr std::string_view kCasUrl = "https://cas-server.xethub.hf.co";

std::int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Json LastCommitJson(const Commit& commit) {
  return Json{{"id", commit.sha}, {"title", commit.title}, {"date", commit.date}};
}

Json EntryJson(const Commit& commit, const Entry& entry, bool expand, bool xet) {
  Json out;
  if (entry.is_dir()) {
    out["type"] = "directory";
    out["oid"] = entry.tree_oid;
    out["size"] = 0;
    out["path"] = entry.path;
  } else {
    const File& file = *entry.file;
    out["type"] = "file";
    out["oid"] = file.oid;
    out["size"] = file.size();
    out["path"] = entry.path;
    if (file.lfs) {
      out["lfs"] =
          Json{{"oid", file.sha256}, {"size", file.size()}, {"pointerSize", file.pointer->size()}};
      if (xet) out["xetHash"] = file.xet_hash;
    }
  }
  if (expand) {
    out["lastCommit"] = LastCommitJson(*commit.LastChange(entry));
    if (!entry.is_dir()) {
      out["securityFileStatus"] =
          Json{{"status", "safe"},
               {"avScan", Json{{"status", "safe"}, {"virusNames", nullptr}}},
               {"pickleImportScan", Json{{"status", "unscanned"}, {"pickleImports", nullptr}}}};
    }
  }
  return out;
}

Json RefJson(const std::string& name, const std::string& ref, const std::string& sha) {
  return Json{{"name", name}, {"ref", ref}, {"targetCommit", sha}};
}

}  // namespace

Reply HubService::RepoInfo(const Repo& repo, const Commit& commit, const Params& query) const {
  const bool blobs = BoolParam(query, "blobs", false);
  std::uint64_t used_storage = 0;
  Json siblings = Json::array();
  for (const File& file : commit.files) {
    used_storage += file.size();
    Json sibling{{"rfilename", file.path}};
    if (blobs) {
      sibling["size"] = file.size();
      sibling["blobId"] = file.oid;
      if (file.lfs) {
        sibling["lfs"] = Json{
            {"sha256", file.sha256}, {"size", file.size()}, {"pointerSize", file.pointer->size()}};
      }
    }
    siblings.push_back(std::move(sibling));
  }
  Json gated = false;
  if (repo.gated == Gating::kAuto) gated = "auto";
  if (repo.gated == Gating::kManual) gated = "manual";
  const auto slash = repo.id.find('/');

  Json doc;
  doc["_id"] = Sha256Hex("id:" + repo.Key()).substr(0, 24);
  doc["id"] = repo.id;
  if (repo.type == RepoType::kModel) doc["modelId"] = repo.id;
  if (slash != std::string::npos) doc["author"] = repo.id.substr(0, slash);
  doc["sha"] = commit.sha;
  doc["lastModified"] = commit.date;
  doc["private"] = model_.AccessOf(repo).is_private;
  doc["gated"] = gated;
  doc["disabled"] = repo.disabled;
  doc["downloads"] = 0;
  doc["likes"] = 0;
  doc["tags"] = Json::array();
  if (repo.type == RepoType::kSpace) doc["sdk"] = "static";
  doc["createdAt"] = repo.created_at;
  doc["usedStorage"] = used_storage;
  doc["xetEnabled"] = config_.xet;
  doc["siblings"] = std::move(siblings);
  if (BoolParam(query, "securityStatus", false)) {
    doc["securityRepoStatus"] = Json{{"scansDone", true}, {"filesWithIssues", Json::array()}};
  }

  // With expand=..., the Hub answers only _id, id and the expanded fields.
  std::set<std::string> expand;
  for (const auto& [key, value] : query) {
    if (key == "expand" || key == "expand[]") expand.insert(value);
  }
  if (!expand.empty()) {
    Json filtered;
    filtered["_id"] = doc["_id"];
    filtered["id"] = doc["id"];
    for (const auto& [key, value] : doc.items()) {
      if (expand.contains(key)) filtered[key] = value;
    }
    doc = std::move(filtered);
  }
  return JsonReply(200, doc.dump());
}

Reply HubService::Tree(const Request& request, const Commit& commit, std::string_view dir,
                       const Params& query) const {
  if (!dir.empty()) {
    const Entry* entry = commit.FindEntry(dir);
    if (entry == nullptr || !entry->is_dir()) {
      Reply missing =
          ErrorReply(404, "EntryNotFound", fmt::format("Entry not found: {} is not a folder", dir));
      missing.Add("X-Repo-Commit", commit.sha);
      return missing;
    }
  }
  const bool recursive = BoolParam(query, "recursive", false);
  const bool expand = BoolParam(query, "expand", false);
  const std::size_t page_size = expand ? kExpandedPageSize : kPageSize;
  const std::vector<const Entry*> entries = commit.List(dir, recursive);

  // The cursor names the last path of the previous page.
  auto it = entries.begin();
  if (const auto cursor = Param(query, "cursor")) {
    const auto decoded = Base64UrlDecode(*cursor);
    const Json parsed = decoded ? Json::parse(*decoded, nullptr, false) : Json();
    if (!parsed.is_object() || !parsed.contains("file_name") || !parsed["file_name"].is_string()) {
      return ErrorReply(400, "", "Invalid cursor");
    }
    const std::string after = parsed["file_name"].get<std::string>();
    it = std::upper_bound(entries.begin(), entries.end(), after,
                          [](const std::string& p, const Entry* e) { return p < e->path; });
  }
  Json page = Json::array();
  const auto end =
      entries.end() - it > static_cast<std::ptrdiff_t>(page_size) ? it + page_size : entries.end();
  for (auto e = it; e != end; ++e) page.push_back(EntryJson(commit, **e, expand, config_.xet));

  Reply reply = JsonReply(200, page.dump());
  if (end != entries.end()) {
    // Absolute, from the request's own Host, carrying every parameter
    // (HUB_PROTOCOL.md §1.6): clients GET it verbatim.
    const std::string cursor = Base64UrlEncode(Json{{"file_name", (*(end - 1))->path}}.dump());
    const auto [raw_path, unused] = SplitTarget(Sv(request.target()));
    std::string url = fmt::format("{}{}?recursive={}&expand={}", HostUrl(request), raw_path,
                                  recursive ? "true" : "false", expand ? "true" : "false");
    for (const auto& [key, value] : query) {
      if (key == "recursive" || key == "expand" || key == "cursor") continue;
      url += "&" + PercentEncode(key, false) + "=" + PercentEncode(value, false);
    }
    url += "&cursor=" + cursor;
    reply.Add("Link", fmt::format("<{}>; rel=\"next\"", url));
  }
  return reply;
}

Reply HubService::PathsInfo(const Request& request, const Commit& commit) const {
  std::vector<std::string> paths;
  bool expand = false;
  const std::string& body = request.body();
  const auto type = request[http::field::content_type];
  const bool json_body =
      std::string_view(type.data(), type.size()).find("json") != std::string_view::npos ||
      (type.empty() && body.starts_with('{'));
  if (json_body) {
    const Json parsed = Json::parse(body, nullptr, false);
    if (!parsed.is_object() || !parsed.contains("paths") || !parsed["paths"].is_array()) {
      return ErrorReply(400, "", "Invalid body: expected {\"paths\": [...]}");
    }
    for (const Json& p : parsed["paths"]) {
      if (!p.is_string()) return ErrorReply(400, "", "Invalid body: paths must be strings");
      paths.push_back(p.get<std::string>());
    }
    if (parsed.contains("expand")) {
      const Json& e = parsed["expand"];
      expand = e.is_boolean() ? e.get<bool>()
                              : e.is_string() && (ToLower(e.get<std::string>()) == "true" ||
                                                  e.get<std::string>() == "1");
    }
  } else {
    const Params form = ParseQuery(body);
    for (const auto& [key, value] : form) {
      if (key == "paths" || key == "paths[]") paths.push_back(value);
    }
    expand = BoolParam(form, "expand", false);
  }
  Json out = Json::array();
  for (std::string path : paths) {
    while (!path.empty() && path.back() == '/') path.pop_back();
    const Entry* entry = commit.FindEntry(path);
    if (entry != nullptr) out.push_back(EntryJson(commit, *entry, expand, config_.xet));
  }
  return JsonReply(200, out.dump());
}

Reply HubService::RefsDoc(const Repo& repo, const Params& query) const {
  const Refs refs = model_.GetRefs(repo);
  Json doc;
  Json branches = Json::array();
  for (const auto& [name, sha] : refs.branches)
    branches.push_back(RefJson(name, "refs/heads/" + name, sha));
  Json converts = Json::array();
  for (const auto& [name, sha] : refs.converts) {
    converts.push_back(RefJson(name, "refs/convert/" + name, sha));
  }
  Json tags = Json::array();
  for (const auto& [name, sha] : refs.tags) tags.push_back(RefJson(name, "refs/tags/" + name, sha));
  doc["branches"] = std::move(branches);
  doc["converts"] = std::move(converts);
  doc["tags"] = std::move(tags);
  if (BoolParam(query, "include_prs", false)) {
    Json prs = Json::array();
    for (const auto& [n, sha] : refs.pull_requests) {
      const std::string ref = "refs/pr/" + std::to_string(n);
      prs.push_back(RefJson(ref, ref, sha));
    }
    doc["pullRequests"] = std::move(prs);
  }
  return JsonReply(200, doc.dump());
}

Reply HubService::WhoAmI(const Request& request) const {
  const auto token = BearerToken(request);
  if (token && token->empty()) return ErrorReply(401, "", "Invalid username or password.");
  if (!token || !model_.IsValidToken(*token)) {
    return ErrorReply(401, "", "Invalid credentials in Authorization header");
  }
  const std::string name = token->starts_with("hf_") ? token->substr(3) : *token;
  Json doc;
  doc["type"] = "user";
  doc["id"] = Sha256Hex("user:" + name).substr(0, 24);
  doc["name"] = name;
  doc["fullname"] = name;
  doc["email"] = name + "@example.com";
  doc["emailVerified"] = true;
  doc["canPay"] = false;
  doc["isPro"] = false;
  doc["periodEnd"] = nullptr;
  doc["avatarUrl"] = "/avatars/" + name + ".svg";
  doc["orgs"] = Json::array();
  doc["auth"] = Json{{"type", "access_token"},
                     {"accessToken", Json{{"displayName", "fakehub-" + name},
                                          {"role", "read"},
                                          {"createdAt", "2024-01-01T00:00:00.000Z"}}}};
  return JsonReply(200, doc.dump());
}

Reply HubService::XetReadToken(const Repo& repo, const Commit& commit) const {
  const std::int64_t exp = UnixNow() + 3600;
  const std::string token =
      "xet_fake_" + Sha256Hex(fmt::format("{}:{}:{}", repo.Key(), commit.sha, exp)).substr(0, 40);
  Json doc{{"accessToken", token}, {"casUrl", kCasUrl}, {"exp", exp}};
  Reply reply = JsonReply(200, doc.dump());
  reply.Add("X-Xet-Access-Token", token);
  reply.Add("X-Xet-Cas-Url", std::string(kCasUrl));
  reply.Add("X-Xet-Token-Expiration", std::to_string(exp));
  return reply;
}

Reply HubService::Commits(const Commit& commit) const {
  Json out = Json::array();
  for (const Commit* c = &commit; c != nullptr; c = c->parent) {
    out.push_back(Json{{"id", c->sha},
                       {"title", c->title},
                       {"message", ""},
                       {"authors", Json::array({Json{{"user", "fakehub"}}})},
                       {"date", c->date}});
  }
  Reply reply = JsonReply(200, out.dump());
  reply.Add("X-Total-Count", std::to_string(out.size()));
  return reply;
}

}  // namespace hubcache::fakehub
