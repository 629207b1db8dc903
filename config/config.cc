#include "config/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "config/keys_internal.h"
#include "core/url.h"

extern char** environ;

namespace hubcache::config {
namespace {

using internal::FindKey;
using internal::KeyDef;
using internal::Keys;
using internal::RawValue;

constexpr std::string_view kEnvPrefix = "HUBCACHE_";
constexpr std::string_view kConfigFileVar = "HUBCACHE_CONFIG";

std::vector<std::string> AllEnvNames() {
  std::vector<std::string> out;
  for (const KeyDef& def : Keys()) out.push_back(EnvName(def.Key()));
  out.emplace_back(kConfigFileVar);
  return out;
}

std::vector<std::string> AllSectionNames() {
  std::vector<std::string> out;
  for (std::string_view s : internal::Sections()) out.emplace_back(s);
  return out;
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates,
                       std::string_view before = "", std::string_view after = "") {
  auto suggestion = internal::Suggest(word, candidates);
  if (!suggestion) return "";
  return fmt::format("; did you mean {}{}{}?", before, *suggestion, after);
}

std::string ShowRaw(const RawValue& raw) {
  if (!raw.is_list && raw.items.size() == 1) return fmt::format("\"{}\"", raw.items.front());
  std::string out = "[";
  for (std::size_t i = 0; i < raw.items.size(); ++i) {
    if (i) out += ", ";
    out += fmt::format("\"{}\"", raw.items[i]);
  }
  return out + "]";
}

// Applies one value from one layer, recording its origin or the problem.
class Applier {
 public:
  Applier(Loaded& loaded, const std::map<std::string, std::string>& env)
      : loaded_(loaded), env_(env) {}

  void Apply(const KeyDef& def, const RawValue& raw, Origin origin) {
    // Apply to a copy so that a failed value leaves nothing behind.
    Config candidate = loaded_.config;
    if (auto problem = internal::ApplyValue(def, raw, env_, candidate)) {
      // A proxy URL may carry a password: never echo it back.
      const std::string shown = def.Key() == "upstream.proxy" && raw.items.size() == 1
                                    ? "\"" + RedactUrl(raw.items.front()) + "\""
                                    : ShowRaw(raw);
      Problem(fmt::format("{} = {} ({}): {}", def.Key(), shown, origin.Describe(), *problem));
      return;
    }
    loaded_.config = std::move(candidate);
    loaded_.origins[def.Key()] = std::move(origin);
  }

  void Problem(std::string text) { problems_.push_back(std::move(text)); }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  Loaded& loaded_;
  const std::map<std::string, std::string>& env_;
  std::vector<std::string> problems_;
};

// Converts a TOML node to the raw form; nullopt with `problem` set if it is
// not a scalar or an array of scalars.
std::optional<RawValue> FromToml(const toml::node& node, std::string& problem) {
  auto scalar = [](const toml::node& n) -> std::optional<std::string> {
    if (auto s = n.as_string()) return s->get();
    if (auto i = n.as_integer()) return std::to_string(i->get());
    if (auto f = n.as_floating_point()) return fmt::format("{}", f->get());
    if (auto b = n.as_boolean()) return std::string(b->get() ? "true" : "false");
    return std::nullopt;
  };
  RawValue raw;
  if (auto array = node.as_array()) {
    raw.is_list = true;
    for (const toml::node& item : *array) {
      auto text = scalar(item);
      if (!text) {
        problem = "expected a list of plain values";
        return std::nullopt;
      }
      raw.items.push_back(std::move(*text));
    }
    return raw;
  }
  auto text = scalar(node);
  if (!text) {
    problem = node.is_table() ? "expected a value, got a table"
                              : "expected a string, number or boolean";
    return std::nullopt;
  }
  raw.items.push_back(std::move(*text));
  return raw;
}

void LoadFile(const std::string& path, Applier& applier) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    applier.Problem(fmt::format("config file {}: {}", path,
                                std::filesystem::exists(path, ec)
                                    ? "not a regular file"
                                    : "no such file"));
    return;
  }
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& err) {
    const auto& where = err.source().begin;
    applier.Problem(fmt::format("config file {} line {} column {}: {}", path, where.line,
                                where.column, err.description()));
    return;
  }
  const Origin origin{Origin::Kind::kFile, path};
  for (const auto& [section_key, section_node] : table) {
    const std::string section(section_key.str());
    const toml::table* section_table = section_node.as_table();
    if (!internal::IsSection(section)) {
      applier.Problem(fmt::format("config file {}: unknown section [{}]{}", path, section,
                                  DidYouMean(section, AllSectionNames(), "[", "]")));
      continue;
    }
    if (section_table == nullptr) {
      applier.Problem(fmt::format("config file {}: {} must be a section [{}], not a value",
                                  path, section, section));
      continue;
    }
    for (const auto& [name_key, value_node] : *section_table) {
      const std::string name(name_key.str());
      const KeyDef* def = FindKey(section, name);
      if (def == nullptr) {
        std::vector<std::string> candidates;
        for (const KeyDef& k : Keys()) {
          if (k.section == section) candidates.emplace_back(k.name);
        }
        applier.Problem(fmt::format("config file {}: unknown key {}.{}{}", path, section,
                                    name,
                                    DidYouMean(name, candidates, section + ".")));
        continue;
      }
      std::string problem;
      auto raw = FromToml(value_node, problem);
      if (!raw) {
        applier.Problem(fmt::format("{} ({}): {}", def->Key(), origin.Describe(), problem));
        continue;
      }
      applier.Apply(*def, *raw, origin);
    }
  }
}

void LoadEnvironment(const std::map<std::string, std::string>& env, Applier& applier) {
  for (const auto& [name, value] : env) {
    if (!name.starts_with(kEnvPrefix) || name == kConfigFileVar) continue;
    const KeyDef* found = nullptr;
    for (const KeyDef& def : Keys()) {
      if (EnvName(def.Key()) == name) found = &def;
    }
    if (found == nullptr) {
      applier.Problem(fmt::format("unknown environment variable {}{}", name,
                                  DidYouMean(name, AllEnvNames())));
      continue;
    }
    applier.Apply(*found, RawValue{{value}, false}, {Origin::Kind::kEnvironment, name});
  }
}

void LoadFlags(const std::vector<FlagValue>& flags, Applier& applier) {
  for (const FlagValue& flag : flags) {
    const std::size_t dot = flag.key.find('.');
    const KeyDef* def = dot == std::string::npos
                            ? nullptr
                            : FindKey(flag.key.substr(0, dot), flag.key.substr(dot + 1));
    if (def == nullptr) {
      applier.Problem(fmt::format("{}: unknown key {}{}", flag.flag, flag.key,
                                  DidYouMean(flag.key, AllKeys())));
      continue;
    }
    applier.Apply(*def, RawValue{flag.values, flag.values.size() > 1},
                  {Origin::Kind::kFlag, flag.flag});
  }
}

const std::string* EnvValue(const std::map<std::string, std::string>& env,
                            std::string_view name) {
  auto it = env.find(std::string(name));
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

// HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as curl reads them, fill the upstream
// proxy keys when no layer of ours set them.
void ApplyProxyEnvironment(const std::map<std::string, std::string>& env, Loaded& loaded,
                           Applier& applier) {
  const bool https = loaded.config.upstream.url.starts_with("https:");
  const std::vector<std::string_view> proxy_vars =
      https ? std::vector<std::string_view>{"https_proxy", "HTTPS_PROXY"}
            : std::vector<std::string_view>{"http_proxy", "HTTP_PROXY"};
  auto fill = [&](std::string_view key_name, const std::vector<std::string_view>& vars) {
    const KeyDef* def = FindKey("upstream", key_name);
    if (loaded.origins[def->Key()].kind != Origin::Kind::kDefault) return;
    for (std::string_view var : vars) {
      if (const std::string* value = EnvValue(env, var)) {
        applier.Apply(*def, RawValue{{*value}, false},
                      {Origin::Kind::kEnvironment, std::string(var)});
        return;
      }
    }
  };
  fill("proxy", proxy_vars);
  fill("no_proxy", {"no_proxy", "NO_PROXY"});
}

// Checks that need the final value of a key (files that must exist).
void CheckCluster(Loaded& loaded, Applier& applier) {
  const p2p::ClusterOptions& cluster = loaded.config.cluster;
  const auto where = [&loaded](const char* key) { return loaded.origins[key].Describe(); };
  if (cluster.listen.empty()) {
    if (!cluster.peers.empty() || !cluster.dns.empty()) {
      applier.Problem(fmt::format("cluster.listen is empty ({}) but cluster.{} is set ({}): a "
                                  "node joins a cluster at its own cluster address; set "
                                  "cluster.listen to the HOST:PORT the other nodes reach it at",
                                  where("cluster.listen"),
                                  cluster.peers.empty() ? "dns" : "peers",
                                  where(cluster.peers.empty() ? "cluster.dns" : "cluster.peers")));
    }
    return;
  }
  if (cluster.peers.empty() && cluster.dns.empty()) {
    applier.Problem(fmt::format("cluster.listen = \"{}\" ({}) needs cluster.peers (the nodes' "
                                "HOST:PORT addresses) or cluster.dns (a name that resolves to "
                                "every node)",
                                cluster.listen, where("cluster.listen")));
  }
  if (cluster.secret_file.empty()) {
    applier.Problem(fmt::format("cluster.listen = \"{}\" ({}) needs cluster.secret_file: every "
                                "cluster request is signed with the shared secret in that file",
                                cluster.listen, where("cluster.listen")));
  } else {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(cluster.secret_file, ec)) {
      applier.Problem(fmt::format("cluster.secret_file = \"{}\" ({}): no such file; expected a "
                                  "file holding the cluster's shared secret",
                                  cluster.secret_file, where("cluster.secret_file")));
    }
  }
  if (cluster.dead_after <= cluster.health_interval) {
    applier.Problem(fmt::format("cluster.dead_after ({}) must be longer than "
                                "cluster.health_interval ({}), or every node looks dead",
                                where("cluster.dead_after"), where("cluster.health_interval")));
  }
}

void CheckFinal(Loaded& loaded, Applier& applier) {
  CheckCluster(loaded, applier);
  const std::string& ca = loaded.config.upstream.ca_file;
  if (!ca.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(ca, ec)) {
      applier.Problem(fmt::format("upstream.ca_file = \"{}\" ({}): no such file; expected "
                                  "a PEM file of CA certificates, or empty for the system "
                                  "store",
                                  ca, loaded.origins["upstream.ca_file"].Describe()));
    }
  }
}

}  // namespace

std::string Origin::Describe() const {
  switch (kind) {
    case Kind::kDefault: return "default";
    case Kind::kFile: return "file " + detail;
    case Kind::kEnvironment: return "env " + detail;
    case Kind::kFlag: return "flag " + detail;
  }
  return "default";
}

tl::expected<Loaded, std::string> Load(const Sources& sources) {
  Loaded loaded;
  loaded.config.store.cache_dir = DefaultCacheDir(sources.env);
  for (const KeyDef& def : Keys()) loaded.origins[def.Key()] = Origin{};

  Applier applier(loaded, sources.env);
  loaded.config_file = sources.config_file;
  if (loaded.config_file.empty()) {
    if (const std::string* path = EnvValue(sources.env, kConfigFileVar)) {
      loaded.config_file = *path;
    }
  }
  if (!loaded.config_file.empty()) LoadFile(loaded.config_file, applier);
  LoadEnvironment(sources.env, applier);
  LoadFlags(sources.flags, applier);
  ApplyProxyEnvironment(sources.env, loaded, applier);
  CheckFinal(loaded, applier);

  if (!applier.problems().empty()) {
    std::string message;
    for (const std::string& p : applier.problems()) {
      if (!message.empty()) message += '\n';
      message += p;
    }
    return tl::unexpected<std::string>(std::move(message));
  }
  return loaded;
}

std::string Render(const Loaded& loaded) {
  Config copy = loaded.config;
  std::string out = "# hubcache effective configuration";
  out += loaded.config_file.empty() ? " (no config file)\n"
                                    : " (config file " + loaded.config_file + ")\n";
  std::string_view section;
  for (const KeyDef& def : Keys()) {
    if (def.section != section) {
      section = def.section;
      out += fmt::format("\n[{}]\n", section);
    }
    auto origin = loaded.origins.find(def.Key());
    out += fmt::format("{} = {}  # {}\n", def.name, internal::RenderValue(def, copy),
                       origin == loaded.origins.end() ? "default"
                                                      : origin->second.Describe());
  }
  return out;
}

bool IsReloadableKey(std::string_view key) {
  for (const KeyDef& def : Keys()) {
    if (def.reloadable && def.Key() == key) return true;
  }
  return false;
}

std::vector<std::string> AllKeys() {
  std::vector<std::string> out;
  for (const KeyDef& def : Keys()) out.push_back(def.Key());
  return out;
}

std::string EnvName(std::string_view key) {
  std::string out(kEnvPrefix);
  for (char c : key) {
    out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return out;
}

std::string DefaultCacheDir(const std::map<std::string, std::string>& env) {
  if (const std::string* systemd = EnvValue(env, "CACHE_DIRECTORY")) {
    // systemd passes a colon-separated list when several are configured.
    return systemd->substr(0, systemd->find(':'));
  }
  if (const std::string* xdg = EnvValue(env, "XDG_CACHE_HOME")) return *xdg + "/hubcache";
  if (const std::string* home = EnvValue(env, "HOME")) return *home + "/.cache/hubcache";
  return "/var/cache/hubcache";
}

std::string RedactUrl(std::string_view url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const std::size_t auth_start = scheme + 3;
  const std::size_t auth_end = url.find('/', auth_start);
  const std::string_view authority = url.substr(auth_start, auth_end - auth_start);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const std::size_t colon = authority.find(':');
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  std::string out(url.substr(0, auth_start + colon + 1));
  out += Secret::kPlaceholder;
  out += url.substr(auth_start + at);
  return out;
}

}  // namespace hubcache::config
