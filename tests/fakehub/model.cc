#include "tests/fakehub/model.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace hubcache::fakehub {
namespace {

constexpr std::string_view kBuiltinUser = "hf_user";

std::string HexToRaw(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string raw;
  raw.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw += static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
  }
  return raw;
}

std::string_view Parent(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string CheckPath(std::string_view path) {
  if (path.empty()) return "empty file path";
  if (path.find('\0') != std::string_view::npos) return "file path contains NUL";
  std::size_t start = 0;
  for (;;) {
    const auto slash = path.find('/', start);
    const std::string_view segment = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return "bad file path '" + std::string(path) + "'";
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return "";
}

struct TreeItem {
  std::string name;
  bool dir = false;
  std::string oid;
};

// A git tree object id: entries in git's order (a directory sorts as if its
// name ended in '/'), each "<mode> <name>\0<20-byte id>".
std::string TreeOid(std::vector<TreeItem> items) {
  std::sort(items.begin(), items.end(), [](const TreeItem& a, const TreeItem& b) {
    return (a.dir ? a.name + "/" : a.name) < (b.dir ? b.name + "/" : b.name);
  });
  std::string body;
  for (const TreeItem& item : items) {
    body += item.dir ? "40000 " : "100644 ";
    body += item.name;
    body += '\0';
    body += HexToRaw(item.oid);
  }
  std::string object = "tree " + std::to_string(body.size());
  object += '\0';
  object += body;
  return Sha1Hex(object);
}

}  // namespace

std::string_view TypeName(RepoType type) {
  switch (type) {
    case RepoType::kModel:
      return "model";
    case RepoType::kDataset:
      return "dataset";
    case RepoType::kSpace:
      return "space";
  }
  return "model";
}

std::string_view TypePlural(RepoType type) {
  switch (type) {
    case RepoType::kModel:
      return "models";
    case RepoType::kDataset:
      return "datasets";
    case RepoType::kSpace:
      return "spaces";
  }
  return "models";
}

std::optional<RepoType> ParseRepoType(std::string_view text) {
  if (text == "model" || text == "models") return RepoType::kModel;
  if (text == "dataset" || text == "datasets") return RepoType::kDataset;
  if (text == "space" || text == "spaces") return RepoType::kSpace;
  return std::nullopt;
}

bool IsCommitSha(std::string_view text) {
  return text.size() == 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

const File* Commit::FindFile(std::string_view path) const {
  auto it = std::lower_bound(files.begin(), files.end(), path,
                             [](const File& f, std::string_view p) { return f.path < p; });
  return it != files.end() && it->path == path ? &*it : nullptr;
}

const Entry* Commit::FindEntry(std::string_view path) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), path,
                             [](const Entry& e, std::string_view p) { return e.path < p; });
  return it != entries.end() && it->path == path ? &*it : nullptr;
}

std::vector<const Entry*> Commit::List(std::string_view dir, bool recursive) const {
  std::vector<const Entry*> out;
  const std::string prefix = dir.empty() ? std::string() : std::string(dir) + "/";
  auto it = std::lower_bound(entries.begin(), entries.end(), prefix,
                             [](const Entry& e, const std::string& p) { return e.path < p; });
  for (; it != entries.end() && it->path.starts_with(prefix); ++it) {
    if (recursive || it->path.find('/', prefix.size()) == std::string::npos) {
      out.push_back(&*it);
    }
  }
  return out;
}

const Commit* Commit::LastChange(const Entry& entry) const {
  const std::string& id = entry.is_dir() ? entry.tree_oid : entry.file->oid;
  const Commit* last = this;
  while (last->parent != nullptr) {
    const Entry* before = last->parent->FindEntry(entry.path);
    if (before == nullptr || before->is_dir() != entry.is_dir()) break;
    if ((before->is_dir() ? before->tree_oid : before->file->oid) != id) break;
    last = last->parent;
  }
  return last;
}

std::string BuildCommit(Commit& commit) {
  std::sort(commit.files.begin(), commit.files.end(),
            [](const File& a, const File& b) { return a.path < b.path; });
  for (std::size_t i = 0; i < commit.files.size(); ++i) {
    File& file = commit.files[i];
    if (std::string problem = CheckPath(file.path); !problem.empty()) return problem;
    if (i > 0 && commit.files[i - 1].path == file.path) {
      return "duplicate file path '" + file.path + "'";
    }
    // Content is shared between commits and prepared once by the loader;
    // here it only has to be readable.
    if (file.lfs) {
      file.sha256 = file.content->sha256();
      auto pointer =
          Content::Text("version https://git-lfs.github.com/spec/v1\noid sha256:" + file.sha256 +
                        "\nsize " + std::to_string(file.size()) + "\n");
      pointer->Prepare(false, true);
      file.oid = pointer->git_sha1();
      file.pointer = std::move(pointer);
      file.xet_hash = Sha256Hex("xet-merkle:" + file.sha256);
    } else {
      file.oid = file.content->git_sha1();
    }
  }

  // Directories: every proper prefix of every file path.
  std::map<std::string, std::vector<TreeItem>> dirs;
  dirs[""];
  for (const File& file : commit.files) {
    std::string_view dir = Parent(file.path);
    dirs[std::string(dir)].push_back({std::string(BaseName(file.path)), false, file.oid});
    while (!dir.empty()) {
      dirs[std::string(Parent(dir))];
      dirs[std::string(dir)];
      dir = Parent(dir);
    }
  }
  for (const File& file : commit.files) {
    if (dirs.contains(file.path)) {
      return "path '" + file.path + "' is both a file and a directory";
    }
  }
  // Deepest first, so every child tree id is known before its parent's.
  std::vector<std::string> order;
  for (const auto& [dir, items] : dirs) order.push_back(dir);
  std::sort(order.begin(), order.end(), [](const std::string& a, const std::string& b) {
    const auto depth = [](const std::string& s) {
      return s.empty() ? 0 : 1 + std::count(s.begin(), s.end(), '/');
    };
    return depth(a) > depth(b);
  });
  std::map<std::string, std::string> tree_oids;
  for (const std::string& dir : order) {
    const std::string oid = TreeOid(dirs[dir]);
    tree_oids[dir] = oid;
    if (!dir.empty()) {
      dirs[std::string(Parent(dir))].push_back({std::string(BaseName(dir)), true, oid});
    }
  }
  commit.root_tree_oid = tree_oids[""];

  commit.entries.clear();
  for (const File& file : commit.files) commit.entries.push_back({file.path, &file, ""});
  for (const auto& [dir, oid] : tree_oids) {
    if (!dir.empty()) commit.entries.push_back({dir, nullptr, oid});
  }
  std::sort(commit.entries.begin(), commit.entries.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  return "";
}

const Commit* Repo::FindCommit(std::string_view sha_or_name) const {
  for (const auto& commit : commits) {
    if (commit->sha == sha_or_name || commit->name == sha_or_name) return commit.get();
  }
  return nullptr;
}

std::string Repo::Key() const { return std::string(TypeName(type)) + "/" + id; }

Model::Model(std::vector<std::unique_ptr<Repo>> repos, std::map<std::string, Refs> refs_by_key,
             std::set<std::string, std::less<>> users)
    : repos_(std::move(repos)), tokens_(std::move(users)) {
  tokens_.insert(std::string(kBuiltinUser));
  for (const auto& repo : repos_) {
    by_key_[repo->Key()] = repo.get();
    for (const std::string& old_id : repo->renamed_from) {
      renamed_[std::string(TypeName(repo->type)) + "/" + old_id] = repo.get();
    }
    tokens_.insert(repo->tokens.begin(), repo->tokens.end());
    refs_[repo.get()] = refs_by_key[repo->Key()];
    access_[repo.get()] = {.is_private = repo->is_private, .deleted = false, .tokens = repo->tokens};
    for (const auto& commit : repo->commits) {
      for (const File& file : commit->files) {
        if (file.lfs) lfs_.emplace(file.sha256, file.content.get());
      }
    }
  }
}

const Repo* Model::FindRepo(RepoType type, std::string_view id) const {
  auto it = by_key_.find(std::string(TypeName(type)) + "/" + std::string(id));
  return it == by_key_.end() ? nullptr : it->second;
}

const Repo* Model::FindRenamed(RepoType type, std::string_view old_id) const {
  auto it = renamed_.find(std::string(TypeName(type)) + "/" + std::string(old_id));
  return it == renamed_.end() ? nullptr : it->second;
}

bool Model::IsValidToken(std::string_view token) const { return tokens_.contains(token); }

const Commit* Model::Resolve(const Repo& repo, std::string_view revision) const {
  if (IsCommitSha(revision)) {
    for (const auto& commit : repo.commits) {
      if (commit->sha == revision) return commit.get();
    }
    return nullptr;
  }
  std::string sha;
  {
    std::lock_guard lock(mu_);
    const Refs& refs = refs_.at(&repo);
    auto lookup = [&sha](const auto& map, const auto& key) {
      auto it = map.find(key);
      if (it == map.end()) return false;
      sha = it->second;
      return true;
    };
    const std::string rev(revision);
    if (rev == "HEAD") {
      lookup(refs.branches, std::string("main"));
    } else if (rev.starts_with("refs/heads/")) {
      lookup(refs.branches, rev.substr(11));
    } else if (rev.starts_with("refs/tags/")) {
      lookup(refs.tags, rev.substr(10));
    } else if (rev.starts_with("refs/convert/")) {
      lookup(refs.converts, rev.substr(13));
    } else if (rev.starts_with("refs/pr/")) {
      const std::string digits = rev.substr(8);
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) {
        lookup(refs.pull_requests, n);
      }
    } else if (!lookup(refs.branches, rev)) {
      lookup(refs.tags, rev);
    }
  }
  return sha.empty() ? nullptr : repo.FindCommit(sha);
}

bool Model::IsRefName(const Repo& repo, std::string_view revision) const {
  return !IsCommitSha(revision) && Resolve(repo, revision) != nullptr;
}

Refs Model::GetRefs(const Repo& repo) const {
  std::lock_guard lock(mu_);
  return refs_.at(&repo);
}

std::string Model::MoveBranch(RepoType type, std::string_view repo_id, std::string_view branch,
                              std::string_view commit) {
  const Repo* repo = FindRepo(type, repo_id);
  if (repo == nullptr) {
    return "no " + std::string(TypeName(type)) + " repo '" + std::string(repo_id) + "'";
  }
  const Commit* target = repo->FindCommit(commit);
  if (target == nullptr) {
    return "repo '" + std::string(repo_id) + "' has no commit '" + std::string(commit) + "'";
  }
  if (branch.empty() || branch.starts_with("refs/")) {
    return "bad branch name '" + std::string(branch) + "'";
  }
  std::lock_guard lock(mu_);
  refs_.at(repo).branches[std::string(branch)] = target->sha;
  return "";
}

Model::Access Model::AccessOf(const Repo& repo) const {
  std::lock_guard lock(mu_);
  return access_.at(&repo);
}

std::string Model::SetAccess(RepoType type, std::string_view repo_id, Access access) {
  const Repo* repo = FindRepo(type, repo_id);
  if (repo == nullptr) {
    return "no " + std::string(TypeName(type)) + " repo '" + std::string(repo_id) + "'";
  }
  for (const std::string& token : access.tokens) {
    if (!IsValidToken(token)) return "token '" + token + "' is not in the fixture";
  }
  std::lock_guard lock(mu_);
  access_.at(repo) = std::move(access);
  return "";
}

void Model::ResetAccess() {
  std::lock_guard lock(mu_);
  for (const auto& repo : repos_) {
    access_[repo.get()] = {.is_private = repo->is_private, .deleted = false, .tokens = repo->tokens};
  }
}

const Content* Model::FindLfs(std::string_view sha256) const {
  auto it = lfs_.find(sha256);
  return it == lfs_.end() ? nullptr : it->second;
}

}  // namespace hubcache::fakehub
