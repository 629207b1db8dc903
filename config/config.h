// Config: the whole configuration of a hubcache process, and how it is loaded.
//
// Values come from four layers, later ones winning: built-in defaults (the
// module options.h structs), a TOML file, environment variables named
// `HUBCACHE_<SECTION>_<KEY>`, and command-line flags. Every key is validated
// as it is read; an unknown section, key or HUBCACHE_* variable is an error
// with a "did you mean" suggestion. Each error message names the key, the bad
// value, where it came from and what is allowed. Load() reports every problem
// it finds, not only the first.
//
// The key reference (every key, default and variable) is in README.md and in
// the sample config/hubcache.toml; tests keep both in step with the code.
//
// Thread safety: Load() and Render() are pure functions of their inputs.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "core/log.h"
#include "p2p/options.h"
#include "proxy/options.h"
#include "store/options.h"

namespace hubcache::config {

struct Config {
  proxy::ServerOptions server;
  store::Options store;
  proxy::UpstreamOptions upstream;
  proxy::CacheOptions cache;
  proxy::AccessOptions access;
  proxy::ProxyOptions proxy;
  p2p::ClusterOptions cluster;
  proxy::StatusOptions status;
  log::Options log;
};

// Where the effective value of a key came from.
struct Origin {
  enum class Kind { kDefault, kFile, kEnvironment, kFlag };
  Kind kind = Kind::kDefault;
  // File path, variable name or flag spelling; empty for defaults.
  std::string detail;

  // "default", "file /etc/hubcache/hubcache.toml", "env HUBCACHE_X", "flag --listen".
  std::string Describe() const;
};

// One value given on the command line for `key` ("section.name").
struct FlagValue {
  std::string key;
  // One item for a scalar key; a list key takes all items (repeated flags).
  std::vector<std::string> values;
  // The flag as the user typed it ("--listen"), for messages.
  std::string flag;
};

// The inputs of Load(). Nothing is read implicitly: the caller passes the
// environment, so tests control it.
struct Sources {
  // TOML file to read; empty means the HUBCACHE_CONFIG variable of `env`, and
  // if that is unset too, no file (built-in defaults).
  std::string config_file;
  // The process environment (see ProcessEnvironment()).
  std::map<std::string, std::string> env;
  // Command-line values, applied in order.
  std::vector<FlagValue> flags;
};

struct Loaded {
  Config config;
  // The file that was read, or empty.
  std::string config_file;
  // "section.name" → where its value came from, for every key.
  std::map<std::string, Origin> origins;
};

// Builds the effective configuration. On failure returns a message of one or
// more lines, each naming one problem; nothing is partially applied.
tl::expected<Loaded, std::string> Load(const Sources& sources);

// The effective configuration as TOML that Load() reads back, each value
// annotated with its origin. Credentials in upstream.proxy are redacted.
std::string Render(const Loaded& loaded);

// Every key as "section.name", in reference order.
std::vector<std::string> AllKeys();
// True when `key` ("section.name") takes effect on SIGHUP without a restart.
bool IsReloadableKey(std::string_view key);

// The environment variable for a key: "store.cache_dir" → HUBCACHE_STORE_CACHE_DIR.
std::string EnvName(std::string_view key);

// The current process environment as a map.
std::map<std::string, std::string> ProcessEnvironment();

// The default cache directory for an environment: $CACHE_DIRECTORY (set by
// systemd's CacheDirectory=), else $XDG_CACHE_HOME/hubcache, else
// $HOME/.cache/hubcache, else /var/cache/hubcache.
std::string DefaultCacheDir(const std::map<std::string, std::string>& env);

// Masks the password of a `scheme://user:password@host` URL.
std::string RedactUrl(std::string_view url);

}  // namespace hubcache::config
