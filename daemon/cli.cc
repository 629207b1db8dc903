#include "daemon/cli.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "config/units.h"
#include "daemon/cluster_command.h"
#include "daemon/ops.h"
#include "daemon/prefetch.h"
#include "daemon/run.h"
#include "daemon/verify.h"
#include "daemon/version.h"

namespace hubcache::daemon {
namespace {

// The flags every command that reads the configuration accepts.
struct ConfigFlags {
  std::string config_file;
  std::vector<std::string> listen;
  std::string cache_dir;
  std::string upstream;
  std::string upstream_ca_file;
  bool offline = false;
  std::string log_level;
  std::vector<std::string> set;
};

// The flags of commands that work on the store: --config, --cache-dir, --set.
void AddStoreFlags(CLI::App& app, ConfigFlags& flags) {
  app.add_option("--config", flags.config_file,
                 "TOML configuration file (default: $HUBCACHE_CONFIG, else none)")
      ->type_name("FILE");
  app.add_option("--cache-dir", flags.cache_dir, "Cache directory (store.cache_dir)")
      ->type_name("DIR");
  app.add_option("--set", flags.set,
                 "Set any configuration key, e.g. --set upstream.connections=4; repeatable")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

// The flags of commands that talk to the Hub: --upstream, --upstream-ca-file,
// --log-level.
void AddUpstreamFlags(CLI::App& app, ConfigFlags& flags) {
  app.add_option("--upstream", flags.upstream, "Hub URL (upstream.url)")->type_name("URL");
  app.add_option("--upstream-ca-file", flags.upstream_ca_file,
                 "PEM CA bundle to trust for the upstream (upstream.ca_file)")
      ->type_name("FILE");
  app.add_option("--log-level", flags.log_level,
                 "trace, debug, info, warn, error or off (log.level)")
      ->type_name("LEVEL");
}

// Every configuration flag (serve, config check/print).
void AddConfigFlags(CLI::App& app, ConfigFlags& flags) {
  AddStoreFlags(app, flags);
  app.add_option("--listen", flags.listen,
                 "Address to listen on, IPv4:PORT or [IPv6]:PORT; repeat for several "
                 "(server.listen)")
      ->type_name("HOST:PORT")
      ->allow_extra_args(false);
  AddUpstreamFlags(app, flags);
  app.add_flag("--offline", flags.offline,
               "Never contact the upstream; serve only the cache (upstream.offline)");
}

// Turns the parsed flags into the last configuration layer. --set comes
// first so that the dedicated flags win over it.
tl::expected<config::Sources, std::string> ToSources(const ConfigFlags& flags) {
  config::Sources sources;
  sources.config_file = flags.config_file;
  sources.env = config::ProcessEnvironment();
  for (const std::string& assignment : flags.set) {
    const std::size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      return tl::unexpected<std::string>("--set " + assignment +
                                         ": expected KEY=VALUE, such as server.threads=4");
    }
    sources.flags.push_back(
        {assignment.substr(0, eq), {assignment.substr(eq + 1)}, "--set " + assignment.substr(0, eq)});
  }
  if (!flags.listen.empty()) sources.flags.push_back({"server.listen", flags.listen, "--listen"});
  if (!flags.cache_dir.empty()) {
    sources.flags.push_back({"store.cache_dir", {flags.cache_dir}, "--cache-dir"});
  }
  if (!flags.upstream.empty()) sources.flags.push_back({"upstream.url", {flags.upstream}, "--upstream"});
  if (!flags.upstream_ca_file.empty()) {
    sources.flags.push_back({"upstream.ca_file", {flags.upstream_ca_file}, "--upstream-ca-file"});
  }
  if (flags.offline) sources.flags.push_back({"upstream.offline", {"true"}, "--offline"});
  if (!flags.log_level.empty()) sources.flags.push_back({"log.level", {flags.log_level}, "--log-level"});
  return sources;
}

// Loads the configuration or prints why not; nullopt means exit with kExitUsage.
std::optional<config::Loaded> LoadOrReport(const ConfigFlags& flags) {
  auto sources = ToSources(flags);
  if (!sources) {
    std::fprintf(stderr, "hubcache: %s\n", sources.error().c_str());
    return std::nullopt;
  }
  auto loaded = config::Load(*sources);
  if (!loaded) {
    std::fprintf(stderr, "hubcache: invalid configuration:\n");
    std::string_view rest = loaded.error();
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      std::fprintf(stderr, "  %.*s\n", static_cast<int>(line.size()), line.data());
      if (nl == std::string_view::npos) break;
      rest = rest.substr(nl + 1);
    }
    return std::nullopt;
  }
  return std::move(*loaded);
}

// A REPO[@REV] argument with its --type; nullopt after printing why not.
std::optional<store::RepoSpec> RepoArgument(const std::string& text, const std::string& type) {
  std::optional<store::RepoType> parsed_type;
  if (!type.empty()) {
    parsed_type = store::ParseRepoType(type);
    if (!parsed_type) {
      std::fprintf(stderr, "hubcache: --type %s: expected model, dataset or space\n",
                   type.c_str());
      return std::nullopt;
    }
  }
  auto spec = store::ParseRepoSpec(text, parsed_type);
  if (!spec) {
    std::fprintf(stderr, "hubcache: %s\n", spec.error().c_str());
    return std::nullopt;
  }
  return *spec;
}

// The targets and token of `prefetch`; nullopt after printing why not.
std::optional<PrefetchRequest> PrefetchArguments(const std::string& repo, const std::string& type,
                                                 const std::string& revision,
                                                 const std::string& from_file,
                                                 const std::string& token_file) {
  PrefetchRequest request;
  if (repo.empty() == from_file.empty()) {
    std::fprintf(stderr, "hubcache: prefetch takes a REPO or --from-file LIST (one of them)\n");
    return std::nullopt;
  }
  if (!repo.empty()) {
    auto spec = RepoArgument(repo, type);
    if (!spec) return std::nullopt;
    if (!revision.empty()) {
      if (!spec->revision.empty()) {
        std::fprintf(stderr, "hubcache: give the revision as REPO@REV or --revision, not both\n");
        return std::nullopt;
      }
      spec->revision = revision;
    }
    request.targets.push_back(*spec);
  } else {
    std::ifstream in(from_file);
    if (!in) {
      std::fprintf(stderr, "hubcache: --from-file %s: cannot read it\n", from_file.c_str());
      return std::nullopt;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::optional<store::RepoType> parsed_type;
    if (!type.empty()) parsed_type = store::ParseRepoType(type);
    auto targets = ParseTargetList(text, parsed_type);
    if (!targets) {
      std::fprintf(stderr, "hubcache: --from-file %s: %s\n", from_file.c_str(),
                   targets.error().c_str());
      return std::nullopt;
    }
    if (targets->empty()) {
      std::fprintf(stderr, "hubcache: --from-file %s lists no repositories\n", from_file.c_str());
      return std::nullopt;
    }
    request.targets = std::move(*targets);
  }
  std::string token;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) {
      std::fprintf(stderr, "hubcache: --token-file %s: cannot read it\n", token_file.c_str());
      return std::nullopt;
    }
    std::getline(in, token);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.empty()) {
      std::fprintf(stderr, "hubcache: --token-file %s is empty\n", token_file.c_str());
      return std::nullopt;
    }
  } else if (const char* env = std::getenv("HF_TOKEN"); env != nullptr) {
    token = env;
  }
  request.token = Secret(std::move(token));
  return request;
}

// A command on the store that names a repository: `ls`, `rm`, `pin`, `unpin`.
struct RepoCommand {
  CLI::App* app = nullptr;
  ConfigFlags flags;
  std::string repo;
  std::string type;
};

void AddRepoCommand(CLI::App& parent, RepoCommand& command, const char* name,
                    const char* description, bool repo_required) {
  command.app = parent.add_subcommand(name, description);
  AddStoreFlags(*command.app, command.flags);
  auto* repo = command.app->add_option(
      "repo", command.repo,
      "Repository as in URLs: org/name, datasets/org/name or spaces/org/name, optionally "
      "@REVISION");
  if (repo_required) repo->required();
  command.app->add_option("--type", command.type, "model, dataset or space (instead of a prefix)")
      ->type_name("TYPE");
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{
      "hubcache: a caching proxy and edge mirror for the Hugging Face Hub.\n"
      "Point HF_ENDPOINT (Python) or hubUrl (huggingface.js) at it.",
      "hubcache"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hubcache ") + Version());

  ConfigFlags serve_flags;
  std::string prefetch_revision;
  CLI::App* serve = app.add_subcommand("serve", "Run the caching proxy in the foreground");
  AddConfigFlags(*serve, serve_flags);

  CLI::App* config_cmd =
      app.add_subcommand("config", "Check or print the effective configuration");
  config_cmd->require_subcommand(1);
  ConfigFlags check_flags;
  CLI::App* check = config_cmd->add_subcommand(
      "check", "Validate the configuration; exit 0 if valid, 2 with the problems if not");
  AddConfigFlags(*check, check_flags);
  ConfigFlags print_flags;
  CLI::App* print = config_cmd->add_subcommand(
      "print", "Print the effective configuration as TOML, each value with its origin");
  AddConfigFlags(*print, print_flags);

  ConfigFlags verify_flags;
  bool repair = false;
  CLI::App* verify = app.add_subcommand(
      "verify",
      "Rehash every cached blob; report corrupt blobs, missing files and orphans (exit 1 if "
      "any); the daemon must not be running");
  AddStoreFlags(*verify, verify_flags);
  verify->add_flag("--repair", repair,
                   "Fix what was found: drop corrupt or missing blobs (they are fetched again), "
                   "adopt or remove orphans");

  ConfigFlags gc_flags;
  std::string gc_to;
  CLI::App* gc = app.add_subcommand(
      "gc",
      "Evict least-recently-used unpinned blobs down to SIZE, or to the configured limits; the "
      "daemon must not be running");
  AddStoreFlags(*gc, gc_flags);
  gc->add_option("--to", gc_to, "Target size of the cache, e.g. 500GiB or 0")->type_name("SIZE");

  RepoCommand prefetch;
  AddRepoCommand(app, prefetch, "prefetch",
                 "Download REPO@REV (default main) into the cache with what offline serving "
                 "needs; exit 0 when every file is cached and verified",
                 false);
  std::vector<std::string> include, exclude;
  std::string token_file, endpoint, from_file;
  unsigned jobs = 4;
  AddUpstreamFlags(*prefetch.app, prefetch.flags);
  prefetch.app->add_option("--revision", prefetch_revision, "Revision (instead of @REV)")
      ->type_name("REV");
  prefetch.app->add_option("--include", include, "Only files matching GLOB; repeatable")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  prefetch.app->add_option("--exclude", exclude, "Skip files matching GLOB; repeatable")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  prefetch.app->add_option("--token-file", token_file,
                           "File holding a Hub token (default: $HF_TOKEN if set)")
      ->type_name("FILE");
  prefetch.app->add_option("--endpoint", endpoint,
                           "A running hubcache to go through (shares its store); default: work "
                           "on the cache directory directly")
      ->type_name("URL");
  prefetch.app->add_option("--from-file", from_file, "Prefetch every repo[@rev] line of LIST")
      ->type_name("LIST");
  prefetch.app->add_option("--jobs", jobs, "Files downloaded at once (default 4)")
      ->check(CLI::Range(1, 64));
  bool prefetch_cluster = false;
  unsigned replicas = 0;
  auto* cluster_flag = prefetch.app->add_flag(
      "--cluster", prefetch_cluster,
      "On a cluster node: every live member prefetches (each blob comes from the Hub once)");
  prefetch.app
      ->add_option("--replicas", replicas,
                   "On a cluster node: N members prefetch each file, chosen by rendezvous order")
      ->type_name("N")
      ->check(CLI::Range(1, 100000))
      ->excludes(cluster_flag);

  RepoCommand ls, rm, pin, unpin;
  bool ls_json = false;
  AddRepoCommand(app, ls, "ls",
                 "List cached repos (revisions, files, bytes, last access), or one repo's files; "
                 "works while a daemon runs",
                 false);
  ls.app->add_flag("--json", ls_json, "Print JSON for scripts");
  AddRepoCommand(app, rm, "rm",
                 "Forget REPO (or REPO@REV) and delete the blobs nothing else refers to; the "
                 "daemon must not be running",
                 true);
  AddRepoCommand(app, pin, "pin",
                 "Keep the files of REPO@REV (every cached commit of REPO without @REV) through "
                 "eviction",
                 true);
  AddRepoCommand(app, unpin, "unpin", "Remove the pin of REPO@REV, or every pin of REPO", true);

  ConfigFlags export_flags;
  std::vector<std::string> export_repos;
  std::string export_out, export_hf, export_type;
  CLI::App* export_cmd = app.add_subcommand(
      "export",
      "Write cached revisions as an air-gap bundle (--out) and/or a huggingface_hub cache "
      "(--hf-cache); works while a daemon runs");
  AddStoreFlags(*export_cmd, export_flags);
  export_cmd->add_option("repos", export_repos, "REPO[@REV] ... (every cached ref without @REV)")
      ->required();
  export_cmd->add_option("--type", export_type, "model, dataset or space (instead of a prefix)")
      ->type_name("TYPE");
  export_cmd->add_option("--out", export_out, "Bundle directory to write")->type_name("DIR");
  export_cmd->add_option("--hf-cache", export_hf,
                         "huggingface_hub cache directory to write (HF_HUB_CACHE layout)")
      ->type_name("DIR");

  ConfigFlags import_flags;
  std::string import_dir, import_hf;
  bool mark_public = false;
  CLI::App* import_cmd = app.add_subcommand(
      "import",
      "Verify and add a bundle (DIR) or a huggingface_hub cache (--hf-cache DIR) to the cache; "
      "the daemon must not be running");
  AddStoreFlags(*import_cmd, import_flags);
  import_cmd->add_option("dir", import_dir, "Bundle directory (holding manifest.json)");
  import_cmd->add_option("--hf-cache", import_hf, "huggingface_hub cache directory to import")
      ->type_name("DIR");
  import_cmd->add_flag("--mark-public", mark_public,
                       "Serve imported repos to every client even if they are gated or private "
                       "upstream (this site has no Hub to check tokens with)");

  CLI::App* cluster_cmd = app.add_subcommand("cluster", "Look at this node's cluster");
  cluster_cmd->require_subcommand(1);
  ConfigFlags cluster_flags;
  bool cluster_json = false;
  CLI::App* cluster_status = cluster_cmd->add_subcommand(
      "status",
      "Members, liveness, leader share, bytes from and to each peer, swarms (asks the running "
      "daemon; exit 1 if a member is down or refuses this node)");
  AddConfigFlags(*cluster_status, cluster_flags);
  cluster_status->add_flag("--json", cluster_json, "Print the status as JSON");

  CLI::App* version = app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0 in CLI11.
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (cluster_status->parsed()) {
    auto loaded = LoadOrReport(cluster_flags);
    if (!loaded) return kExitUsage;
    return ClusterStatus(*loaded, cluster_json);
  }
  if (version->parsed()) {
    std::printf("hubcache %s\n", Version());
    return kExitOk;
  }
  if (serve->parsed()) {
    auto loaded = LoadOrReport(serve_flags);
    if (!loaded) return kExitUsage;
    Reloader reload = [&serve_flags]() -> tl::expected<config::Loaded, std::string> {
      auto sources = ToSources(serve_flags);
      if (!sources) return tl::unexpected(sources.error());
      return config::Load(*sources);
    };
    return Run(*loaded, std::move(reload));
  }
  if (gc->parsed()) {
    auto loaded = LoadOrReport(gc_flags);
    if (!loaded) return kExitUsage;
    std::optional<std::uint64_t> to;
    if (!gc_to.empty()) {
      to = config::ParseSize(gc_to);
      if (!to) {
        std::fprintf(stderr, "hubcache: --to %s: expected a size such as 500GiB, 20G or 0\n",
                     gc_to.c_str());
        return kExitUsage;
      }
    }
    return Gc(*loaded, to);
  }
  if (prefetch.app->parsed()) {
    auto loaded = LoadOrReport(prefetch.flags);
    if (!loaded) return kExitUsage;
    auto request = PrefetchArguments(prefetch.repo, prefetch.type, prefetch_revision, from_file,
                                     token_file);
    if (!request) return kExitUsage;
    request->include = include;
    request->exclude = exclude;
    request->endpoint = endpoint;
    request->jobs = jobs;
    request->cluster = prefetch_cluster;
    request->replicas = replicas;
    if ((prefetch_cluster || replicas > 0) && !endpoint.empty()) {
      std::fprintf(stderr,
                   "hubcache: --cluster and --replicas reach each node at its own endpoint; "
                   "drop --endpoint\n");
      return kExitUsage;
    }
    return Prefetch(*loaded, *request);
  }
  if (export_cmd->parsed()) {
    auto loaded = LoadOrReport(export_flags);
    if (!loaded) return kExitUsage;
    if (export_out.empty() && export_hf.empty()) {
      std::fprintf(stderr, "hubcache: export needs --out DIR and/or --hf-cache DIR\n");
      return kExitUsage;
    }
    std::vector<store::RepoSpec> specs;
    for (const std::string& text : export_repos) {
      auto spec = RepoArgument(text, export_type);
      if (!spec) return kExitUsage;
      specs.push_back(*spec);
    }
    return Export(*loaded, specs, export_out, export_hf);
  }
  if (import_cmd->parsed()) {
    auto loaded = LoadOrReport(import_flags);
    if (!loaded) return kExitUsage;
    if (import_dir.empty() == import_hf.empty()) {
      std::fprintf(stderr, "hubcache: import takes a bundle DIR or --hf-cache DIR (one of them)\n");
      return kExitUsage;
    }
    return import_hf.empty() ? Import(*loaded, import_dir, false, mark_public)
                             : Import(*loaded, import_hf, true, mark_public);
  }
  for (RepoCommand* command : {&ls, &rm, &pin, &unpin}) {
    if (!command->app->parsed()) continue;
    auto loaded = LoadOrReport(command->flags);
    if (!loaded) return kExitUsage;
    std::optional<store::RepoSpec> spec;
    if (!command->repo.empty() || command != &ls) {
      spec = RepoArgument(command->repo, command->type);
      if (!spec) return kExitUsage;
    }
    if (command == &ls) return Ls(*loaded, spec, ls_json);
    if (command == &rm) return Rm(*loaded, *spec);
    if (command == &pin) return Pin(*loaded, *spec);
    return Unpin(*loaded, *spec);
  }
  if (verify->parsed()) {
    auto loaded = LoadOrReport(verify_flags);
    if (!loaded) return kExitUsage;
    return Verify(*loaded, repair);
  }
  if (check->parsed()) {
    auto loaded = LoadOrReport(check_flags);
    if (!loaded) return kExitUsage;
    std::printf("configuration is valid (%s)\n",
                loaded->config_file.empty() ? "no config file"
                                            : ("config file " + loaded->config_file).c_str());
    return kExitOk;
  }
  if (print->parsed()) {
    auto loaded = LoadOrReport(print_flags);
    if (!loaded) return kExitUsage;
    std::fputs(config::Render(*loaded).c_str(), stdout);
    return kExitOk;
  }
  return kExitUsage;
}

}  // namespace hubcache::daemon
