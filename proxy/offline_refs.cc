#include "proxy/offline_refs.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "proxy/hub_path.h"

namespace hubcache::proxy {
namespace {

using Json = nlohmann::json;

// The newest stored refs listing of `repo` (any query, e.g. include_prs=1),
// parsed; nullopt when none is stored or it is not a JSON object.
std::optional<Json> StoredListing(const store::Index& index, const store::RepoId& repo) {
  // Documents without a revision live under "@", keyed like ServeApi keys
  // them: "GET /{repo}/refs[?query]".
  const std::string key = "GET /" + repo.name + "/refs";
  std::optional<store::DocRecord> newest;
  auto scan =
      index.ForEachDoc(repo, "@", [&](std::string_view request, const store::DocRecord& doc) {
        const bool listing = request.starts_with(key) &&
                             (request.size() == key.size() || request[key.size()] == '?');
        if (listing && (!newest || doc.stored_at > newest->stored_at)) newest = doc;
        return true;
      });
  if (!scan || !newest) return std::nullopt;
  Json listing = Json::parse(newest->body, nullptr, false);
  if (!listing.is_object()) return std::nullopt;
  return listing;
}

// The targetCommit of the entry of `list` (an array of {name, ref,
// targetCommit}) whose `field` equals `value`.
std::optional<std::string> Find(const Json& listing, std::string_view list, std::string_view field,
                                std::string_view value) {
  const auto it = listing.find(list);
  if (it == listing.end() || !it->is_array()) return std::nullopt;
  for (const Json& entry : *it) {
    if (!entry.is_object()) continue;
    const auto match = entry.find(field);
    const auto commit = entry.find("targetCommit");
    if (match == entry.end() || !match->is_string() || *match != value) continue;
    if (commit == entry.end() || !commit->is_string()) continue;
    const std::string sha = commit->get<std::string>();
    if (store::IsCommitHash(sha)) return sha;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> ListedCommit(const store::Index& index, const store::RepoId& repo,
                                        std::string_view revision) {
  if (revision.empty() || store::IsCommitHash(revision)) return std::nullopt;
  const auto listing = StoredListing(index, repo);
  if (!listing) return std::nullopt;
  if (revision == "HEAD") revision = "main";
  if (revision.starts_with("refs/")) {
    for (std::string_view list : {"branches", "tags", "converts", "pullRequests"}) {
      if (auto commit = Find(*listing, list, "ref", revision)) return commit;
    }
    return std::nullopt;
  }
  // A bare name is a branch, else a tag (how the Hub resolves it).
  if (auto commit = Find(*listing, "branches", "name", revision)) return commit;
  return Find(*listing, "tags", "name", revision);
}

bool CommitStored(const store::Index& index, const store::RepoId& repo, std::string_view commit) {
  bool found = false;
  auto files = index.ForEachFile(repo, commit, [&](std::string_view, const store::FileRecord&) {
    found = true;
    return false;
  });
  if (files && found) return true;
  auto docs = index.ForEachDoc(repo, commit, [&](std::string_view, const store::DocRecord&) {
    found = true;
    return false;
  });
  return docs && found;
}

bool ListedButNotStored(const store::Index& index, const store::RepoId& repo,
                        std::string_view revision) {
  const auto commit = ListedCommit(index, repo, revision);
  return commit && !CommitStored(index, repo, *commit);
}

RevisionNotFoundAnswer::RevisionNotFoundAnswer(std::string_view revision)
    : message(fmt::format("Invalid rev id: {}", revision)),
      headers({{"X-Error-Code", "RevisionNotFound"}, {"X-Error-Message", message}}) {}

}  // namespace hubcache::proxy
