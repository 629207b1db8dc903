#include "proxy/offline_docs.h"

#include <set>

#include <nlohmann/json.hpp>

#include "proxy/offline_refs.h"
#include "proxy/shaping.h"

namespace hubcache::proxy {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxPages = 100'000;

// The commit a revision names, from the refs table, else from the stored
// refs listing.
std::optional<std::string> CommitOf(const store::Index& index, const store::RepoId& repo,
                                    std::string revision) {
  if (store::IsCommitHash(revision)) return revision;
  if (revision.empty() || revision == "HEAD") revision = "main";
  auto ref = index.GetRef(repo, revision);
  if (ref && *ref) return (*ref)->commit;
  return ListedCommit(index, repo, revision);
}

// The docs-table key of a GET of `path_and_query` under /api/{type}s.
std::string GetKey(const store::RepoId& repo, std::string_view rest) {
  return "GET /" + repo.name + std::string(rest);
}

// Every entry of the recursive listing at `commit`, all pages, or nullopt.
std::optional<Json> FullTree(const store::Index& index, const store::RepoId& repo,
                             const std::string& commit) {
  const std::string api_prefix = "/api/" + std::string(store::RepoTypePlural(repo.type));
  std::string key = GetKey(repo, "/tree/" + commit + "?recursive=true&expand=false");
  Json all = Json::array();
  for (std::size_t n = 0; n < kMaxPages; ++n) {
    auto doc = index.GetDoc(repo, commit, key);
    if (!doc || !*doc) return std::nullopt;
    auto page = Json::parse((*doc)->body, nullptr, false);
    if (!page.is_array()) return std::nullopt;
    for (auto& entry : page) all.push_back(std::move(entry));
    std::string next;
    for (const auto& [name, value] : (*doc)->headers) {
      if (name == "Link") next = NextLinkUrl(value);
    }
    if (next.empty()) return all;
    // The next page's key: its URL's path and query without /api/{type}s
    // (whatever host it names: the store may have been filled through
    // another upstream and imported here).
    std::string_view rest = next;
    if (const std::size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
      const std::size_t slash = rest.find('/', scheme + 3);
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    if (!rest.starts_with(api_prefix)) return std::nullopt;
    rest.remove_prefix(api_prefix.size());
    if (!rest.starts_with("/" + repo.name + "/")) return std::nullopt;
    key = "GET " + std::string(rest);
  }
  return std::nullopt;
}

// The value of `name` in a query string (first occurrence), or nullopt.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// The paths a paths-info request asks for (form or JSON body).
std::optional<std::set<std::string>> RequestedPaths(std::string_view content_type,
                                                    std::string_view body) {
  std::set<std::string> paths;
  if (content_type.find("json") != std::string_view::npos) {
    auto json = Json::parse(body, nullptr, false);
    if (!json.is_object() || !json.contains("paths") || !json["paths"].is_array()) {
      return std::nullopt;
    }
    for (const auto& p : json["paths"]) {
      if (p.is_string()) paths.insert(p.get<std::string>());
    }
    return paths;
  }
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    if (pair.starts_with("paths=")) {
      std::string value(pair.substr(6));
      for (char& c : value) {
        if (c == '+') c = ' ';
      }
      auto decoded = PercentDecode(value);
      if (!decoded) return std::nullopt;
      paths.insert(std::move(*decoded));
    }
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return paths;
}

std::string ParentOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

}  // namespace

std::optional<std::string> SynthesizeApiAnswer(const store::Index& index, const ApiRef& api,
                                               std::string_view query,
                                               std::string_view content_type,
                                               std::string_view body) {
  const bool info = api.route.empty() || api.route == "revision";
  if (!info && api.route != "tree" && api.route != "paths-info") return std::nullopt;
  const auto commit = CommitOf(index, api.repo, api.revision);
  if (!commit) return std::nullopt;

  if (info) {
    auto doc = index.GetDoc(api.repo, *commit, GetKey(api.repo, "/revision/" + *commit));
    if (!doc || !*doc) return std::nullopt;
    return (*doc)->body;
  }
  auto tree = FullTree(index, api.repo, *commit);
  if (!tree) return std::nullopt;
  Json out = Json::array();
  if (api.route == "paths-info") {
    auto paths = RequestedPaths(content_type, body);
    if (!paths) return std::nullopt;
    for (auto& entry : *tree) {
      if (entry.contains("path") && entry["path"].is_string() &&
          paths->count(entry["path"].get<std::string>()) > 0) {
        out.push_back(std::move(entry));
      }
    }
    return out.dump();
  }
  // A tree listing: the folder `rest`, recursively or its direct children.
  const bool recursive = QueryParam(query, "recursive").value_or("false") == "true";
  const std::string folder = api.rest;
  bool folder_exists = folder.empty();
  for (auto& entry : *tree) {
    if (!entry.contains("path") || !entry["path"].is_string()) continue;
    const std::string path = entry["path"].get<std::string>();
    if (path == folder) folder_exists = true;
    const bool below = folder.empty() || path.starts_with(folder + "/");
    if (!below || path == folder) continue;
    folder_exists = true;
    if (recursive || ParentOf(path) == folder) out.push_back(std::move(entry));
  }
  if (!folder_exists) return std::nullopt;
  return out.dump();
}

std::optional<bool> StoredTreeHasFile(const store::Index& index, const store::RepoId& repo,
                                      const std::string& commit, std::string_view path) {
  auto tree = FullTree(index, repo, commit);
  if (!tree) return std::nullopt;
  for (const auto& entry : *tree) {
    if (entry.contains("path") && entry["path"].is_string() && entry["path"] == path &&
        entry.value("type", "") == "file") {
      return true;
    }
  }
  return false;
}

}  // namespace hubcache::proxy
