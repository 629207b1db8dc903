// The table of configuration keys shared by the loader and the renderer.
// Internal to config/: each key is defined once here, with its type, range
// and validation, and every layer (TOML, environment, flags) goes through
// ApplyValue().
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace hubcache::config::internal {

enum class Kind {
  kString,    // free text checked by `check`
  kPath,      // a filesystem path; a leading ~/ expands to $HOME
  kBool,
  kCount,     // a whole number in [min, max]
  kSize,      // bytes, with units
  kDuration,  // milliseconds, with units; min/max in ms
  kPercent,   // a number in [min, max]
  kList,      // strings, each checked by `check`
  kLevel,     // log level
  kFormat,    // log format
};

using Ref = std::variant<std::string*, bool*, std::uint32_t*, std::uint64_t*,
                         double*, std::chrono::milliseconds*,
                         std::vector<std::string>*, log::Level*, log::Format*>;

inline constexpr bool kReloadable = true;

struct KeyDef {
  std::string_view section;
  std::string_view name;
  Kind kind;
  Ref (*ref)(Config&);
  std::uint64_t min = 0;
  std::uint64_t max = UINT64_MAX;
  // For strings and list items: nullopt if acceptable, else a sentence saying
  // what is allowed.
  std::optional<std::string> (*check)(std::string_view value) = nullptr;
  // True when a running daemon applies a new value on SIGHUP; any other key
  // needs a restart (daemon/reload.h).
  bool reloadable = false;

  std::string Key() const;
};

std::span<const KeyDef> Keys();
const KeyDef* FindKey(std::string_view section, std::string_view name);
bool IsSection(std::string_view section);
std::vector<std::string_view> Sections();

// A value as read from one layer, before it is typed.
struct RawValue {
  std::vector<std::string> items;
  // True for a TOML array or repeated flags; false for a single value
  // (an environment value for a list key is split at commas).
  bool is_list = false;
};

// Types, range-checks and stores `raw` into the field of `def` in `config`.
// On failure returns the problem (without the key/origin prefix) and leaves
// `config` unchanged.
std::optional<std::string> ApplyValue(const KeyDef& def, const RawValue& raw,
                                      const std::map<std::string, std::string>& env,
                                      Config& config);

// The value of `def` in `config` as a TOML literal.
std::string RenderValue(const KeyDef& def, Config& config);

// The closest candidate within a small edit distance, if any.
std::optional<std::string> Suggest(std::string_view word,
                                   const std::vector<std::string>& candidates);

}  // namespace hubcache::config::internal
