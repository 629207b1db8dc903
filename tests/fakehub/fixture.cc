#include "tests/fakehub/fixture.h"

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace hubcache::fakehub {
namespace {

constexpr std::string_view kDefaultDate = "2024-01-01T00:00:00.000Z";

// `namespace/name` or a legacy `name`, without characters URLs would mangle.
bool ValidRepoId(std::string_view id) {
  const auto slash = id.find('/');
  const bool two = slash != std::string_view::npos && id.find('/', slash + 1) == std::string_view::npos;
  return !id.empty() && id.front() != '/' && id.back() != '/' &&
         id.find_first_of(" ?#%\\") == std::string_view::npos &&
         (two || slash == std::string_view::npos);
}

// Collects the source name so every error can point at a line.
class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) {}

  std::unique_ptr<Model> Load(std::string_view text);

 private:
  [[noreturn]] void Fail(const toml::source_region* where, const std::string& message) const {
    if (where != nullptr && where->begin) {
      throw std::runtime_error(fmt::format("fakehub fixture {}:{}:{}: {}", source_,
                                           where->begin.line, where->begin.column, message));
    }
    throw std::runtime_error(fmt::format("fakehub fixture {}: {}", source_, message));
  }
  [[noreturn]] void Fail(const toml::node* node, const std::string& message) const {
    Fail(node != nullptr ? &node->source() : nullptr, message);
  }

  void CheckKeys(const toml::table& table, std::string_view where,
                 std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, value] : table) {
      bool ok = false;
      for (std::string_view a : allowed) ok = ok || key.str() == a;
      if (!ok) {
        Fail(key.source().begin ? &key.source() : &value.source(),
             fmt::format("unknown key '{}' in {}", key.str(), where));
      }
    }
  }

  std::string GetString(const toml::table& t, std::string_view key, std::string_view where,
                        std::optional<std::string> fallback = std::nullopt) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
      if (fallback) return *fallback;
      Fail(&t, fmt::format("{} needs '{}'", where, key));
    }
    if (!node->is_string()) Fail(node, fmt::format("'{}' in {} must be a string", key, where));
    return node->as_string()->get();
  }

  bool GetBool(const toml::table& t, std::string_view key, std::string_view where,
               bool fallback) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return fallback;
    if (!node->is_boolean())
      Fail(node, fmt::format("'{}' in {} must be true or false", key, where));
    return node->as_boolean()->get();
  }

  std::uint64_t GetUint(const toml::table& t, std::string_view key, std::string_view where,
                        std::optional<std::uint64_t> fallback = std::nullopt) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) {
      if (fallback) return *fallback;
      Fail(&t, fmt::format("{} needs '{}'", where, key));
    }
    if (!node->is_integer() || node->as_integer()->get() < 0) {
      Fail(node, fmt::format("'{}' in {} must be a non-negative integer", key, where));
    }
    return static_cast<std::uint64_t>(node->as_integer()->get());
  }

  std::vector<std::string> GetStrings(const toml::table& t, std::string_view key,
                                      std::string_view where) const {
    std::vector<std::string> out;
    const toml::node* node = t.get(key);
    if (node == nullptr) return out;
    const toml::array* array = node->as_array();
    if (array == nullptr)
      Fail(node, fmt::format("'{}' in {} must be an array of strings", key, where));
    for (const toml::node& item : *array) {
      if (!item.is_string()) Fail(&item, fmt::format("'{}' in {} must hold strings", key, where));
      out.push_back(item.as_string()->get());
    }
    return out;
  }

  const toml::array* GetTables(const toml::table& t, std::string_view key,
                               std::string_view where) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return nullptr;
    const toml::array* array = node->as_array();
    if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
      Fail(node, fmt::format("'{}' in {} must be an array of tables", key, where));
    }
    return array;
  }

  std::unique_ptr<Repo> LoadRepo(const toml::table& t, Refs& refs);
  void LoadCommit(const toml::table& t, Repo& repo, std::size_t index);
  File LoadFile(const toml::table& t, const std::string& where);
  void LoadRefs(const toml::table& t, std::string_view key, const Repo& repo, Refs& refs);

  std::string source_;
};

std::unique_ptr<Model> Loader::Load(std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text, source_);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(fmt::format("fakehub fixture {}:{}:{}: {}", source_,
                                         e.source().begin.line, e.source().begin.column,
                                         e.description()));
  }
  CheckKeys(root, "the fixture", {"users", "repo"});
  std::set<std::string, std::less<>> users;
  for (std::string& token : GetStrings(root, "users", "the fixture")) {
    users.insert(std::move(token));
  }
  std::vector<std::unique_ptr<Repo>> repos;
  std::map<std::string, Refs> refs;
  if (const toml::array* list = GetTables(root, "repo", "the fixture")) {
    for (const toml::node& node : *list) {
      Refs repo_refs;
      auto repo = LoadRepo(*node.as_table(), repo_refs);
      for (const auto& other : repos) {
        if (other->Key() == repo->Key()) Fail(&node, "repo '" + repo->id + "' defined twice");
      }
      refs[repo->Key()] = std::move(repo_refs);
      repos.push_back(std::move(repo));
    }
  }
  if (repos.empty()) Fail(static_cast<const toml::node*>(nullptr), "no [[repo]] defined");
  // An earlier name leads to one repo, and no repo goes by it now.
  std::set<std::string> earlier;
  for (const auto& repo : repos) {
    for (const std::string& old_id : repo->renamed_from) {
      const std::string key = std::string(TypeName(repo->type)) + "/" + old_id;
      const bool taken = std::any_of(repos.begin(), repos.end(),
                                     [&](const auto& other) { return other->Key() == key; });
      if (taken || !earlier.insert(key).second) {
        Fail(static_cast<const toml::node*>(nullptr),
             "renamed_from '" + old_id + "' of repo '" + repo->id +
                 "' is the id of a repo or another repo's earlier id");
      }
    }
  }
  return std::make_unique<Model>(std::move(repos), std::move(refs), std::move(users));
}

std::unique_ptr<Repo> Loader::LoadRepo(const toml::table& t, Refs& refs) {
  CheckKeys(t, "[[repo]]",
            {"type", "id", "private", "gated", "disabled", "tokens", "created_at", "renamed_from",
             "commit", "branches", "tags", "pull_requests", "converts"});
  auto repo = std::make_unique<Repo>();
  const std::string type = GetString(t, "type", "[[repo]]", "model");
  const auto parsed = ParseRepoType(type);
  if (!parsed) Fail(t.get("type"), "repo type must be model, dataset or space, not '" + type + "'");
  repo->type = *parsed;
  repo->id = GetString(t, "id", "[[repo]]");
  const std::string where = "repo '" + repo->id + "'";
  if (!ValidRepoId(repo->id)) {
    Fail(t.get("id"), "bad repo id '" + repo->id + "' (want 'namespace/name' or 'name')");
  }
  repo->is_private = GetBool(t, "private", where, false);
  repo->disabled = GetBool(t, "disabled", where, false);
  if (const toml::node* gated = t.get("gated")) {
    if (gated->is_boolean()) {
      if (gated->as_boolean()->get()) Fail(gated, "gated must be false, \"auto\" or \"manual\"");
    } else if (gated->is_string() && gated->as_string()->get() == "auto") {
      repo->gated = Gating::kAuto;
    } else if (gated->is_string() && gated->as_string()->get() == "manual") {
      repo->gated = Gating::kManual;
    } else {
      Fail(gated, "gated must be false, \"auto\" or \"manual\"");
    }
  }
  for (std::string& token : GetStrings(t, "tokens", where)) {
    if (!token.starts_with("hf_"))
      Fail(t.get("tokens"), "tokens must start with hf_: '" + token + "'");
    repo->tokens.insert(std::move(token));
  }
  repo->created_at = GetString(t, "created_at", where, std::string(kDefaultDate));
  for (std::string& old_id : GetStrings(t, "renamed_from", where)) {
    if (!ValidRepoId(old_id) || old_id == repo->id) {
      Fail(t.get("renamed_from"), where + ": bad earlier id '" + old_id + "' in renamed_from");
    }
    repo->renamed_from.push_back(std::move(old_id));
  }

  const toml::array* commits = GetTables(t, "commit", where);
  if (commits == nullptr || commits->empty())
    Fail(&t, where + " needs at least one [[repo.commit]]");
  std::size_t index = 0;
  for (const toml::node& node : *commits) LoadCommit(*node.as_table(), *repo, index++);

  LoadRefs(t, "branches", *repo, refs);
  LoadRefs(t, "tags", *repo, refs);
  LoadRefs(t, "pull_requests", *repo, refs);
  LoadRefs(t, "converts", *repo, refs);
  if (t.get("branches") == nullptr) refs.branches["main"] = repo->commits.back()->sha;
  return repo;
}

void Loader::LoadCommit(const toml::table& t, Repo& repo, std::size_t index) {
  CheckKeys(t, "[[repo.commit]]",
            {"name", "sha", "parent", "title", "date", "files", "series", "remove"});
  auto commit = std::make_unique<Commit>();
  commit->name = GetString(t, "name", "[[repo.commit]] of repo '" + repo.id + "'",
                           fmt::format("c{}", index + 1));
  const std::string where = "commit '" + commit->name + "' of repo '" + repo.id + "'";
  if (repo.FindCommit(commit->name) != nullptr) Fail(&t, where + " defined twice");
  commit->sha = GetString(t, "sha", where,
                          Sha1Hex(fmt::format("fakehub-commit\n{}\n{}\n{}", TypeName(repo.type),
                                              repo.id, commit->name)));
  if (!IsCommitSha(commit->sha))
    Fail(t.get("sha"), where + ": sha must be 40 lower-case hex digits");
  commit->title = GetString(t, "title", where, "Commit " + commit->name);
  commit->date =
      GetString(t, "date", where,
                fmt::format("2024-01-{:02}T00:00:00.000Z", 1 + std::min<std::size_t>(index, 27)));
  if (t.get("parent") != nullptr) {
    const std::string parent = GetString(t, "parent", where);
    commit->parent = repo.FindCommit(parent);
    if (commit->parent == nullptr) {
      Fail(t.get("parent"),
           where + ": parent '" + parent + "' is not an earlier commit of the repo");
    }
    commit->files = commit->parent->files;
  }
  // A path given in this commit replaces the parent's version; given twice
  // in this commit, it is a mistake.
  std::set<std::string> declared;
  auto remove = [&commit](const std::string& path) {
    return std::erase_if(commit->files, [&path](const File& f) { return f.path == path; }) > 0;
  };
  auto declare = [&](const std::string& path, const toml::node& node) {
    if (!declared.insert(path).second) Fail(&node, where + ": file '" + path + "' given twice");
    remove(path);
  };
  for (const std::string& path : GetStrings(t, "remove", where)) {
    if (!remove(path)) {
      Fail(t.get("remove"), where + ": cannot remove '" + path + "', the parent has no such file");
    }
  }
  if (const toml::array* files = GetTables(t, "files", where)) {
    for (const toml::node& node : *files) {
      File file = LoadFile(*node.as_table(), where);
      declare(file.path, node);
      commit->files.push_back(std::move(file));
    }
  }
  if (const toml::array* series = GetTables(t, "series", where)) {
    for (const toml::node& node : *series) {
      const toml::table& s = *node.as_table();
      const std::string swhere = "a series of " + where;
      CheckKeys(s, swhere, {"prefix", "suffix", "digits", "start", "count", "size", "seed", "lfs"});
      const std::string prefix = GetString(s, "prefix", swhere);
      const std::string suffix = GetString(s, "suffix", swhere, "");
      const std::uint64_t digits = GetUint(s, "digits", swhere, 5);
      const std::uint64_t start = GetUint(s, "start", swhere, 0);
      const std::uint64_t count = GetUint(s, "count", swhere);
      const std::uint64_t size = GetUint(s, "size", swhere);
      const std::uint64_t seed = GetUint(s, "seed", swhere, 0);
      const bool lfs = GetBool(s, "lfs", swhere, false);
      if (count > 1'000'000 || digits > 20) Fail(&s, swhere + ": count or digits too large");
      for (std::uint64_t i = 0; i < count; ++i) {
        File file;
        file.path = fmt::format("{}{:0{}}{}", prefix, start + i, digits, suffix);
        auto content = Content::Generated(seed + start + i, size);
        content->Prepare(lfs, !lfs);
        file.content = std::move(content);
        file.lfs = lfs;
        declare(file.path, node);
        commit->files.push_back(std::move(file));
      }
    }
  }
  if (std::string problem = BuildCommit(*commit); !problem.empty())
    Fail(&t, where + ": " + problem);
  repo.commits.push_back(std::move(commit));
}

File Loader::LoadFile(const toml::table& t, const std::string& where) {
  CheckKeys(t, "a file of " + where, {"path", "text", "size", "seed", "lfs"});
  File file;
  file.path = GetString(t, "path", "a file of " + where);
  const std::string fwhere = "file '" + file.path + "' of " + where;
  file.lfs = GetBool(t, "lfs", fwhere, false);
  std::shared_ptr<Content> content;
  if (t.get("text") != nullptr) {
    if (t.get("size") != nullptr || t.get("seed") != nullptr) {
      Fail(&t, fwhere + ": give either text or size (+ seed), not both");
    }
    content = Content::Text(GetString(t, "text", fwhere));
  } else if (t.get("size") != nullptr) {
    // Without a seed, the path picks one, so equal sizes differ in content.
    std::uint64_t path_seed = 0;
    for (char c : Sha1Hex(file.path).substr(0, 15)) {
      path_seed = path_seed * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    content = Content::Generated(GetUint(t, "seed", fwhere, path_seed), GetUint(t, "size", fwhere));
  } else {
    Fail(&t, fwhere + " needs text or size");
  }
  content->Prepare(file.lfs, !file.lfs);
  file.content = std::move(content);
  return file;
}

void Loader::LoadRefs(const toml::table& t, std::string_view key, const Repo& repo, Refs& refs) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  const std::string where = fmt::format("[repo.{}] of repo '{}'", key, repo.id);
  if (table == nullptr) Fail(node, where + " must be a table of name = \"commit\"");
  for (const auto& [name_key, value] : *table) {
    const std::string name(name_key.str());
    if (!value.is_string()) Fail(&value, where + ": '" + name + "' must name a commit");
    const std::string target = value.as_string()->get();
    const Commit* commit = repo.FindCommit(target);
    if (commit == nullptr)
      Fail(&value, where + ": '" + name + "' points at unknown commit '" + target + "'");
    if (name.empty() || name.starts_with("refs/") || name.starts_with('/') || name.ends_with('/')) {
      Fail(&value, where + ": bad ref name '" + name + "'");
    }
    if (key == "branches") {
      refs.branches[name] = commit->sha;
    } else if (key == "tags") {
      refs.tags[name] = commit->sha;
    } else if (key == "converts") {
      refs.converts[name] = commit->sha;
    } else {
      std::uint64_t n = 0;
      const bool digits =
          name.find_first_not_of("0123456789") == std::string::npos && name.size() < 10;
      if (!digits)
        Fail(&value, where + ": pull request keys are numbers (refs/pr/N), not '" + name + "'");
      n = std::stoull(name);
      refs.pull_requests[n] = commit->sha;
    }
  }
}

}  // namespace

std::unique_ptr<Model> LoadFixture(std::string_view text, const std::string& source) {
  return Loader(source).Load(text);
}

std::unique_ptr<Model> LoadFixtureFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("fakehub fixture " + path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return LoadFixture(text.str(), path);
}

std::string DefaultFixturePath() { return FAKEHUB_DEFAULT_FIXTURE; }

}  // namespace hubcache::fakehub
