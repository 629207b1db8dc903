// The configuration key table. To add a key: add its field to the module's
// options.h, a row below, a line in config/hubcache.toml and in README.md
// (config_test.cc fails until all four agree).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "config/keys_internal.h"
#include "config/units.h"
#include "core/url.h"

namespace hubcache::config::internal {
namespace {

using std::chrono::milliseconds;
constexpr std::uint64_t kMsPerSecond = 1000;
constexpr std::uint64_t kMsPerDay = 86'400'000;

std::optional<std::string> CheckListen(std::string_view value) {
  if (core::ParseListenAddress(value)) return std::nullopt;
  return "expected IPv4:PORT or [IPv6]:PORT with a numeric address, such as "
         "127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080";
}

std::optional<std::string> CheckOptionalListen(std::string_view value) {
  if (value.empty()) return std::nullopt;
  return CheckListen(value);
}

std::optional<std::string> CheckHttpUrl(std::string_view value, bool allow_empty) {
  if (value.empty() && allow_empty) return std::nullopt;
  auto url = core::ParseUrl(value);
  if (url && url->userinfo.empty() && !url->has_query) return std::nullopt;
  return "expected an http:// or https:// URL without credentials, query or "
         "fragment, such as https://huggingface.co";
}

std::optional<std::string> CheckUpstreamUrl(std::string_view value) {
  return CheckHttpUrl(value, /*allow_empty=*/false);
}

std::optional<std::string> CheckPublicUrl(std::string_view value) {
  return CheckHttpUrl(value, /*allow_empty=*/true);
}

std::optional<std::string> CheckProxyUrl(std::string_view value) {
  if (value.empty()) return std::nullopt;
  auto url = core::ParseUrl(value);
  if (url && url->scheme == "http" && (url->path.empty() || url->path == "/") &&
      !url->has_query) {
    return std::nullopt;
  }
  return "expected an HTTP proxy URL http://[user:password@]host:port, or empty "
         "for none";
}

std::optional<std::string> CheckNonEmpty(std::string_view value) {
  if (!value.empty()) return std::nullopt;
  return "expected a non-empty value";
}

std::optional<std::string> CheckNoProxy(std::string_view value) {
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return "expected a comma-separated list of host names, domains (.example.com), "
             "IP addresses or *";
    }
  }
  return std::nullopt;
}

// A cluster address: host (a name or an IP literal, IPv6 in brackets) and
// an explicit port.
std::optional<std::string> CheckNodeAddress(std::string_view value) {
  auto url = core::ParseUrl("http://" + std::string(value));
  if (url && url->explicit_port && url->port != 0 && url->path.empty() && !url->has_query &&
      url->userinfo.empty()) {
    return std::nullopt;
  }
  return "expected HOST:PORT (a name or an IP address, IPv6 in brackets), such as "
         "10.0.0.2:8090 or node-2.hubcache:8090";
}

std::optional<std::string> CheckClusterListen(std::string_view value) {
  if (value.empty()) return std::nullopt;
  if (auto parsed = core::ParseListenAddress(value); parsed) {
    if (parsed->port == 0) return "expected a fixed port: the other nodes must know it";
    if (parsed->host == "0.0.0.0" || parsed->host == "::") {
      return "expected the address the other nodes reach this one at, not a wildcard";
    }
    return std::nullopt;
  }
  return "expected IPv4:PORT or [IPv6]:PORT with a numeric address the other nodes can "
         "reach, such as 10.0.0.2:8090, or empty for no cluster";
}

std::optional<std::string> CheckDnsName(std::string_view value) {
  if (value.empty()) return std::nullopt;
  return CheckNodeAddress(value);
}

using Server = proxy::ServerOptions;
using Store = store::Options;
using Upstream = proxy::UpstreamOptions;
using Cache = proxy::CacheOptions;
using Access = proxy::AccessOptions;
using Proxy = proxy::ProxyOptions;
using Log = log::Options;
using Cluster = p2p::ClusterOptions;
using Status = proxy::StatusOptions;

// The field of `config` a key stores into: (config.*kSection).*kField.
template <auto kSection, auto kField>
Ref RefTo(Config& config) {
  return &((config.*kSection).*kField);
}

const KeyDef kKeys[] = {
    // [server]
    {"server", "listen", Kind::kList, RefTo<&Config::server, &Server::listen>, 1, 64, CheckListen},
    {"server", "public_url", Kind::kString, RefTo<&Config::server, &Server::public_url>, 0, 0,
     CheckPublicUrl},
    {"server", "threads", Kind::kCount, RefTo<&Config::server, &Server::threads>, 0, 256},
    {"server", "max_connections", Kind::kCount, RefTo<&Config::server, &Server::max_connections>, 1,
     1'000'000},
    {"server", "max_header_bytes", Kind::kSize, RefTo<&Config::server, &Server::max_header_bytes>, 1024,
     1024 * 1024},
    {"server", "request_timeout", Kind::kDuration, RefTo<&Config::server, &Server::request_timeout>,
     100, kMsPerDay},
    {"server", "idle_timeout", Kind::kDuration, RefTo<&Config::server, &Server::idle_timeout>, 100,
     kMsPerDay},
    {"server", "shutdown_timeout", Kind::kDuration, RefTo<&Config::server, &Server::shutdown_timeout>,
     0, kMsPerDay},
    // [store]
    {"store", "cache_dir", Kind::kPath, RefTo<&Config::store, &Store::cache_dir>, 0, 0, CheckNonEmpty},
    {"store", "max_bytes", Kind::kSize, RefTo<&Config::store, &Store::max_bytes>},
    {"store", "min_free_percent", Kind::kPercent, RefTo<&Config::store, &Store::min_free_percent>, 0,
     99},
    {"store", "index_max_bytes", Kind::kSize, RefTo<&Config::store, &Store::index_max_bytes>,
     256 * 1024, std::uint64_t{1} << 40},
    // [upstream]
    {"upstream", "url", Kind::kString, RefTo<&Config::upstream, &Upstream::url>, 0, 0, CheckUpstreamUrl},
    {"upstream", "ca_file", Kind::kPath, RefTo<&Config::upstream, &Upstream::ca_file>},
    {"upstream", "proxy", Kind::kString, RefTo<&Config::upstream, &Upstream::proxy>, 0, 0, CheckProxyUrl},
    {"upstream", "no_proxy", Kind::kString, RefTo<&Config::upstream, &Upstream::no_proxy>, 0, 0,
     CheckNoProxy},
    {"upstream", "connections", Kind::kCount, RefTo<&Config::upstream, &Upstream::connections>, 1, 64},
    {"upstream", "chunk_bytes", Kind::kSize, RefTo<&Config::upstream, &Upstream::chunk_bytes>,
     64 * 1024, 1024ULL * 1024 * 1024},
    {"upstream", "connect_timeout", Kind::kDuration, RefTo<&Config::upstream, &Upstream::connect_timeout>,
     100, kMsPerDay},
    {"upstream", "response_timeout", Kind::kDuration,
     RefTo<&Config::upstream, &Upstream::response_timeout>, 100, kMsPerDay},
    {"upstream", "read_timeout", Kind::kDuration, RefTo<&Config::upstream, &Upstream::read_timeout>, 100,
     kMsPerDay},
    {"upstream", "max_retries", Kind::kCount, RefTo<&Config::upstream, &Upstream::max_retries>, 0, 20},
    {"upstream", "offline", Kind::kBool, RefTo<&Config::upstream, &Upstream::offline>},
    // [cache]
    {"cache", "ref_ttl", Kind::kDuration, RefTo<&Config::cache, &Cache::ref_ttl>, 0, 365 * kMsPerDay,
     nullptr, kReloadable},
    // [access]
    {"access", "public_ttl", Kind::kDuration, RefTo<&Config::access, &Access::public_ttl>, 0,
     365 * kMsPerDay, nullptr, kReloadable},
    {"access", "grant_ttl", Kind::kDuration, RefTo<&Config::access, &Access::grant_ttl>, 0,
     365 * kMsPerDay, nullptr, kReloadable},
    {"access", "offline_grant_ttl", Kind::kDuration,
     RefTo<&Config::access, &Access::offline_grant_ttl>, 0, 365 * kMsPerDay, nullptr, kReloadable},
    // [proxy]
    {"proxy", "allow_writes", Kind::kBool, RefTo<&Config::proxy, &Proxy::allow_writes>},
    {"proxy", "verified_ranges", Kind::kBool, RefTo<&Config::proxy, &Proxy::verified_ranges>},
    // [cluster]
    {"cluster", "listen", Kind::kString, RefTo<&Config::cluster, &Cluster::listen>, 0, 0,
     CheckClusterListen},
    {"cluster", "torrent_port", Kind::kCount, RefTo<&Config::cluster, &Cluster::torrent_port>, 0,
     65535},
    {"cluster", "peers", Kind::kList, RefTo<&Config::cluster, &Cluster::peers>, 0, 4096,
     CheckNodeAddress},
    {"cluster", "dns", Kind::kString, RefTo<&Config::cluster, &Cluster::dns>, 0, 0, CheckDnsName},
    {"cluster", "dns_interval", Kind::kDuration, RefTo<&Config::cluster, &Cluster::dns_interval>,
     1000, kMsPerDay},
    {"cluster", "secret_file", Kind::kPath, RefTo<&Config::cluster, &Cluster::secret_file>},
    {"cluster", "health_interval", Kind::kDuration,
     RefTo<&Config::cluster, &Cluster::health_interval>, 100, 60 * kMsPerSecond},
    {"cluster", "dead_after", Kind::kDuration, RefTo<&Config::cluster, &Cluster::dead_after>, 300,
     600 * kMsPerSecond},
    {"cluster", "stall_timeout", Kind::kDuration, RefTo<&Config::cluster, &Cluster::stall_timeout>,
     500, kMsPerDay},
    {"cluster", "seed_idle", Kind::kDuration, RefTo<&Config::cluster, &Cluster::seed_idle>,
     1000, kMsPerDay},
    {"cluster", "stream_fanout", Kind::kCount, RefTo<&Config::cluster, &Cluster::stream_fanout>, 1,
     1024},
    {"cluster", "upload_rate_limit", Kind::kSize,
     RefTo<&Config::cluster, &Cluster::upload_rate_limit>},
    // [status]
    {"status", "enabled", Kind::kBool, RefTo<&Config::status, &Status::enabled>},
    {"status", "listen", Kind::kString, RefTo<&Config::status, &Status::listen>, 0, 0,
     CheckOptionalListen},
    {"status", "admin_token_file", Kind::kPath, RefTo<&Config::status, &Status::admin_token_file>},
    // [log]
    {"log", "level", Kind::kLevel, RefTo<&Config::log, &Log::level>, 0, UINT64_MAX, nullptr,
     kReloadable},
    {"log", "format", Kind::kFormat, RefTo<&Config::log, &Log::format>, 0, UINT64_MAX, nullptr,
     kReloadable},
};

std::string Trim(std::string_view s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  auto b = std::find_if(s.begin(), s.end(), not_space);
  auto e = std::find_if(s.rbegin(), s.rend(), not_space).base();
  return b < e ? std::string(b, e) : std::string();
}

std::optional<bool> ParseBool(std::string_view s) {
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "0" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

std::string ExpandHome(const std::string& path,
                       const std::map<std::string, std::string>& env) {
  if (path == "~" || path.starts_with("~/")) {
    auto home = env.find("HOME");
    if (home != env.end() && !home->second.empty()) {
      return home->second + path.substr(1);
    }
  }
  return path;
}

std::string RangeText(const KeyDef& def) {
  switch (def.kind) {
    case Kind::kSize:
      if (def.max == UINT64_MAX) return "";
      return fmt::format(" from {} to {}", FormatSize(def.min), FormatSize(def.max));
    case Kind::kDuration:
      return fmt::format(" from {} to {}", FormatDuration(milliseconds(def.min)),
                         FormatDuration(milliseconds(def.max)));
    default:
      return fmt::format(" from {} to {}", def.min, def.max);
  }
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04X}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

template <class T>
T* Get(const KeyDef& def, Config& config) {
  return std::get<T*>(def.ref(config));
}

}  // namespace

std::string KeyDef::Key() const { return fmt::format("{}.{}", section, name); }

std::span<const KeyDef> Keys() { return kKeys; }

const KeyDef* FindKey(std::string_view section, std::string_view name) {
  for (const KeyDef& def : kKeys) {
    if (def.section == section && def.name == name) return &def;
  }
  return nullptr;
}

std::vector<std::string_view> Sections() {
  std::vector<std::string_view> out;
  for (const KeyDef& def : kKeys) {
    if (std::find(out.begin(), out.end(), def.section) == out.end()) {
      out.push_back(def.section);
    }
  }
  return out;
}

bool IsSection(std::string_view section) {
  auto all = Sections();
  return std::find(all.begin(), all.end(), section) != all.end();
}

std::optional<std::string> ApplyValue(const KeyDef& def, const RawValue& raw,
                                      const std::map<std::string, std::string>& env,
                                      Config& config) {
  if (def.kind == Kind::kList) {
    std::vector<std::string> items;
    for (const std::string& item : raw.items) {
      if (raw.is_list) {
        items.push_back(Trim(item));
        continue;
      }
      // A single value (environment, one flag) may hold a comma-separated list.
      std::string_view rest = item;
      while (true) {
        const std::size_t comma = rest.find(',');
        items.push_back(Trim(rest.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
      }
    }
    if (items.size() < def.min || items.size() > def.max) {
      return fmt::format("expected a list of {} to {} values", def.min, def.max);
    }
    for (const std::string& item : items) {
      if (def.check) {
        if (auto problem = def.check(item)) {
          return fmt::format("item \"{}\": {}", item, *problem);
        }
      }
    }
    *Get<std::vector<std::string>>(def, config) = std::move(items);
    return std::nullopt;
  }

  if (raw.items.size() != 1) return std::string("expected a single value, not a list");
  const std::string text = def.kind == Kind::kString || def.kind == Kind::kPath
                               ? raw.items.front()
                               : Trim(raw.items.front());
  switch (def.kind) {
    case Kind::kString:
    case Kind::kPath: {
      if (def.check) {
        if (auto problem = def.check(text)) return problem;
      }
      std::string value = def.kind == Kind::kPath ? ExpandHome(text, env) : text;
      // URLs are stored without a trailing slash so that paths append cleanly.
      if (def.check == CheckUpstreamUrl || def.check == CheckPublicUrl) {
        while (value.ends_with('/')) value.pop_back();
      }
      *Get<std::string>(def, config) = std::move(value);
      return std::nullopt;
    }
    case Kind::kBool: {
      auto value = ParseBool(text);
      if (!value) return std::string("expected true or false");
      *Get<bool>(def, config) = *value;
      return std::nullopt;
    }
    case Kind::kCount: {
      std::uint64_t value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
          value < def.min || value > def.max) {
        return "expected a whole number" + RangeText(def);
      }
      *Get<std::uint32_t>(def, config) = static_cast<std::uint32_t>(value);
      return std::nullopt;
    }
    case Kind::kSize: {
      auto value = ParseSize(text);
      if (!value || *value < def.min || *value > def.max) {
        return "expected a size such as 500GB, 8MiB or 1048576 (bytes)" + RangeText(def);
      }
      Ref ref = def.ref(config);
      if (auto* p32 = std::get_if<std::uint32_t*>(&ref)) {
        **p32 = static_cast<std::uint32_t>(*value);
      } else {
        *std::get<std::uint64_t*>(ref) = *value;
      }
      return std::nullopt;
    }
    case Kind::kDuration: {
      auto value = ParseDuration(text);
      if (!value || static_cast<std::uint64_t>(value->count()) < def.min ||
          static_cast<std::uint64_t>(value->count()) > def.max) {
        return "expected a duration such as 30s, 5m or 1h30m (a bare number is "
               "seconds)" + RangeText(def);
      }
      *Get<milliseconds>(def, config) = *value;
      return std::nullopt;
    }
    case Kind::kPercent: {
      double value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
          !std::isfinite(value) || value < static_cast<double>(def.min) ||
          value > static_cast<double>(def.max)) {
        return "expected a percentage" + RangeText(def);
      }
      *Get<double>(def, config) = value;
      return std::nullopt;
    }
    case Kind::kLevel: {
      auto value = log::ParseLevel(text);
      if (!value) return std::string("expected one of trace, debug, info, warn, error, off");
      *Get<log::Level>(def, config) = *value;
      return std::nullopt;
    }
    case Kind::kFormat: {
      auto value = log::ParseFormat(text);
      if (!value) return std::string("expected text or json");
      *Get<log::Format>(def, config) = *value;
      return std::nullopt;
    }
    case Kind::kList:
      break;
  }
  return std::string("internal error: unhandled key kind");
}

std::string RenderValue(const KeyDef& def, Config& config) {
  switch (def.kind) {
    case Kind::kString:
    case Kind::kPath: {
      const std::string& value = *Get<std::string>(def, config);
      return Quote(def.check == CheckProxyUrl ? RedactUrl(value) : value);
    }
    case Kind::kBool:
      return *Get<bool>(def, config) ? "true" : "false";
    case Kind::kCount:
      return std::to_string(*Get<std::uint32_t>(def, config));
    case Kind::kSize: {
      Ref ref = def.ref(config);
      const std::uint64_t value = std::holds_alternative<std::uint32_t*>(ref)
                                      ? *std::get<std::uint32_t*>(ref)
                                      : *std::get<std::uint64_t*>(ref);
      return Quote(FormatSize(value));
    }
    case Kind::kDuration:
      return Quote(FormatDuration(*Get<milliseconds>(def, config)));
    case Kind::kPercent:
      return fmt::format("{}", *Get<double>(def, config));
    case Kind::kList: {
      std::string out = "[";
      const auto& items = *Get<std::vector<std::string>>(def, config);
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += Quote(items[i]);
      }
      return out + "]";
    }
    case Kind::kLevel:
      return Quote(log::LevelName(*Get<log::Level>(def, config)));
    case Kind::kFormat:
      return Quote(log::FormatName(*Get<log::Format>(def, config)));
  }
  return "\"\"";
}

std::optional<std::string> Suggest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const std::string& candidate : candidates) {
    const std::size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace hubcache::config::internal
