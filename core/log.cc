#include "core/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "core/errc.h"

namespace hubcache::log {
namespace {

constexpr std::array<std::string_view, 5> kModuleNames = {
    "daemon", "config", "store", "proxy", "p2p"};

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kTrace: return spdlog::level::trace;
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string PatternFor(Format format) {
  // %v is the body rendered by RenderBody(); for JSON it is the tail of an
  // object whose head this pattern writes.
  if (format == Format::kJson) {
    return R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","module":"%n",%v})";
  }
  return "%Y-%m-%dT%H:%M:%S.%eZ %l %n %v";
}

// The loggers exist from first use so that code running before Configure()
// (tests, early startup errors) still logs, as text at info level.
struct Registry {
  Registry() {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sinks.push_back(sink);
    for (std::size_t i = 0; i < kModuleNames.size(); ++i) {
      loggers[i] = std::make_shared<spdlog::logger>(
          std::string(kModuleNames[i]), sink);
    }
    Apply(Options{});
  }
  void Apply(const Options& options) {
    format.store(options.format);
    level.store(options.level);
    for (auto& logger : loggers) {
      logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
          PatternFor(options.format), spdlog::pattern_time_type::utc));
      logger->set_level(ToSpd(options.level));
      logger->flush_on(spdlog::level::warn);
    }
  }
  std::array<std::shared_ptr<spdlog::logger>, kModuleNames.size()> loggers;
  std::vector<spdlog::sink_ptr> sinks;
  std::atomic<Format> format{Format::kText};
  std::atomic<Level> level{Level::kInfo};
};

Registry& GetRegistry() {
  static Registry registry;
  return registry;
}

bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

// Escapes for both a quoted text value and a JSON string.
void AppendEscaped(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

void AppendValue(std::string& out, Format format, const Field::Value& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          if (format == Format::kJson || NeedsQuotes(v)) {
            out += '"';
            AppendEscaped(out, v);
            out += '"';
          } else {
            out += v;
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else {
          out += fmt::to_string(v);
        }
      },
      value);
}

}  // namespace

std::string RenderBody(Format format, std::string_view event,
                       std::initializer_list<Field> fields) {
  std::string out;
  out.reserve(64 + fields.size() * 24);
  if (format == Format::kJson) {
    out += "\"event\":\"";
    AppendEscaped(out, event);
    out += '"';
    for (const Field& f : fields) {
      out += ",\"";
      AppendEscaped(out, f.key());
      out += "\":";
      AppendValue(out, format, f.value());
    }
    return out;
  }
  out += event;
  for (const Field& f : fields) {
    out += ' ';
    out += f.key();
    out += '=';
    AppendValue(out, format, f.value());
  }
  return out;
}

void Configure(const Options& options) { GetRegistry().Apply(options); }

bool Enabled(Level level) {
  return level != Level::kOff && level >= GetRegistry().level.load();
}

void Event(Module module, Level level, std::string_view event,
           std::initializer_list<Field> fields) {
  Registry& registry = GetRegistry();
  if (!Enabled(level)) return;
  const std::string body = RenderBody(registry.format.load(), event, fields);
  registry.loggers[static_cast<std::size_t>(module)]->log(
      ToSpd(level), spdlog::string_view_t(body.data(), body.size()));
}

void TEST_Capture(std::ostream* out) {
  Registry& registry = GetRegistry();
  for (auto& logger : registry.loggers) {
    auto& sinks = logger->sinks();
    sinks.resize(1);  // the stderr sink
    if (out != nullptr) sinks.push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(*out));
  }
  Options options;
  options.level = registry.level.load();
  options.format = registry.format.load();
  registry.Apply(options);  // new sinks get the formatter too
}

void Flush() {
  for (auto& logger : GetRegistry().loggers) logger->flush();
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    case Level::kOff: return "off";
  }
  return "info";
}

std::string_view FormatName(Format format) {
  return format == Format::kJson ? "json" : "text";
}

Result<Level> ParseLevel(std::string_view text) {
  for (Level l : {Level::kTrace, Level::kDebug, Level::kInfo, Level::kWarn,
                  Level::kError, Level::kOff}) {
    if (text == LevelName(l)) return l;
  }
  return Fail(core::Errc::kInvalidArgument);
}

Result<Format> ParseFormat(std::string_view text) {
  if (text == "text") return Format::kText;
  if (text == "json") return Format::kJson;
  return Fail(core::Errc::kInvalidArgument);
}

}  // namespace hubcache::log
