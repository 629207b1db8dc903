// Structured logging: one event name plus stable key=value fields per line.
//
//   log::Info(log::Module::kProxy, "cache_miss",
//             {{"req", id}, {"repo", repo}, {"bytes", size}});
//
// prints, in text format,
//   2026-11-23T15:40:00.123Z info proxy cache_miss req=7f3a repo=org/m bytes=12
// and in JSON format one object per line:
//   {"ts":"...","level":"info","module":"proxy","event":"cache_miss",...}
//
// Every line goes to stderr (journald keeps it under systemd); there are no
// log files. One named spdlog logger per module exists from first use; the
// daemon calls Configure() at startup (and on reload) to set format and level.
// Request context is passed explicitly as fields, never through thread-locals,
// because coroutines change threads.
//
// Never pass a token as a plain string: wrap it in core::Secret, whose field
// prints a placeholder. Thread safety: every function here is thread-safe.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <string_view>
#include <variant>

#include "core/result.h"
#include "core/secret.h"

namespace hubcache::log {

enum class Module { kDaemon, kConfig, kStore, kProxy, kP2p };
enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };
enum class Format { kText, kJson };

// The [log] section of the configuration.
struct Options {
  // Lowest level written: trace, debug, info, warn, error or off.
  Level level = Level::kInfo;
  // text: `event key=value ...`; json: one JSON object per line.
  Format format = Format::kText;
};

// One key=value pair of a log line. Holds views: a Field must not outlive the
// Event() call it is passed to (it is built inline in the call).
class Field {
 public:
  using Value = std::variant<std::string_view, std::int64_t, std::uint64_t,
                             double, bool>;

  Field(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  Field(std::string_view key, const char* value)
      : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, const std::string& value)
      : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, const Secret&)
      : key_(key), value_(Secret::kPlaceholder) {}
  Field(std::string_view key, bool value) : key_(key), value_(value) {}
  Field(std::string_view key, double value) : key_(key), value_(value) {}
  template <std::signed_integral T>
  Field(std::string_view key, T value)
      : key_(key), value_(static_cast<std::int64_t>(value)) {}
  template <std::unsigned_integral T>
    requires(!std::same_as<T, bool>)
  Field(std::string_view key, T value)
      : key_(key), value_(static_cast<std::uint64_t>(value)) {}
  // Durations are logged as whole milliseconds; name the key `..._ms`.
  template <class Rep, class Period>
  Field(std::string_view key, std::chrono::duration<Rep, Period> d)
      : key_(key),
        value_(static_cast<std::int64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(d).count())) {}

  std::string_view key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  std::string_view key_;
  Value value_;
};

// Sets format and level for every module logger. Safe to call at any time
// (startup and SIGHUP reload); lines already being written are not torn.
void Configure(const Options& options);

// True when a line at `level` would be written; use it to skip building
// expensive fields.
bool Enabled(Level level);

// Writes one line. `event` is a stable snake_case name; field keys likewise.
void Event(Module module, Level level, std::string_view event,
           std::initializer_list<Field> fields = {});

inline void Debug(Module m, std::string_view event,
                  std::initializer_list<Field> fields = {}) {
  Event(m, Level::kDebug, event, fields);
}
inline void Info(Module m, std::string_view event,
                 std::initializer_list<Field> fields = {}) {
  Event(m, Level::kInfo, event, fields);
}
inline void Warn(Module m, std::string_view event,
                 std::initializer_list<Field> fields = {}) {
  Event(m, Level::kWarn, event, fields);
}
inline void Error(Module m, std::string_view event,
                  std::initializer_list<Field> fields = {}) {
  Event(m, Level::kError, event, fields);
}

// Flushes buffered lines (before exit or abort).
void Flush();

// Test hook: also writes every line to `out` (nullptr stops). `out` must
// outlive the capture.
void TEST_Capture(std::ostream* out);

// Names as written in configuration: "trace" ... "off"; "text" | "json".
std::string_view LevelName(Level level);
std::string_view FormatName(Format format);
// Parse the names above; Errc::kInvalidArgument for anything else.
Result<Level> ParseLevel(std::string_view text);
Result<Format> ParseFormat(std::string_view text);

// Renders the body of a line (event and fields, without timestamp, level and
// module) in `format`. Exposed for tests.
std::string RenderBody(Format format, std::string_view event,
                       std::initializer_list<Field> fields);

}  // namespace hubcache::log
