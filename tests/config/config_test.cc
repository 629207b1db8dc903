#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace hubcache::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sources_.env = {{"HOME", "/home/u"}};
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  void UseFile(const std::string& text) { sources_.config_file = WriteFile("hubcache.toml", text); }

  Loaded MustLoad() {
    auto loaded = Load(sources_);
    EXPECT_TRUE(loaded) << loaded.error();
    return loaded ? *loaded : Loaded{};
  }

  std::string MustFail() {
    auto loaded = Load(sources_);
    EXPECT_FALSE(loaded) << "expected a configuration error";
    return loaded ? std::string() : loaded.error();
  }

  static std::string ReadSource(const std::string& relative) {
    std::ifstream in(std::string(HUBCACHE_SOURCE_DIR) + "/" + relative);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  testing::TempDir temp_{"hubcache-config-test"};
  const fs::path dir_ = temp_.path();
  Sources sources_;
};

TEST_F(ConfigTest, DefaultsNeedNoFile) {
  const Loaded loaded = MustLoad();
  const Config& c = loaded.config;
  EXPECT_EQ(c.server.listen, std::vector<std::string>{"127.0.0.1:8080"});
  EXPECT_EQ(c.store.cache_dir, "/home/u/.cache/hubcache");
  EXPECT_EQ(c.store.max_bytes, 0u);
  EXPECT_EQ(c.store.min_free_percent, 10.0);
  EXPECT_EQ(c.upstream.url, "https://huggingface.co");
  EXPECT_EQ(c.upstream.connections, 8u);
  EXPECT_EQ(c.upstream.chunk_bytes, 8u * 1024 * 1024);
  EXPECT_FALSE(c.upstream.offline);
  EXPECT_EQ(c.cache.ref_ttl, seconds(30));
  EXPECT_EQ(c.access.grant_ttl, seconds(300));
  EXPECT_EQ(c.access.offline_grant_ttl, seconds(0));
  EXPECT_EQ(c.log.level, log::Level::kInfo);
  EXPECT_EQ(c.log.format, log::Format::kText);
  EXPECT_TRUE(loaded.config_file.empty());
  for (const std::string& key : AllKeys()) {
    EXPECT_EQ(loaded.origins.at(key).Describe(), "default") << key;
  }
}

TEST_F(ConfigTest, DefaultCacheDirFollowsSystemdThenXdgThenHome) {
  EXPECT_EQ(DefaultCacheDir({{"CACHE_DIRECTORY", "/var/cache/hubcache:/x"},
                             {"XDG_CACHE_HOME", "/xdg"}, {"HOME", "/h"}}),
            "/var/cache/hubcache");
  EXPECT_EQ(DefaultCacheDir({{"XDG_CACHE_HOME", "/xdg"}, {"HOME", "/h"}}), "/xdg/hubcache");
  EXPECT_EQ(DefaultCacheDir({{"HOME", "/h"}}), "/h/.cache/hubcache");
  EXPECT_EQ(DefaultCacheDir({}), "/var/cache/hubcache");
}

TEST_F(ConfigTest, FileThenEnvironmentThenFlagsLaterWins) {
  UseFile(R"(
[upstream]
connections = 2
chunk_bytes = "16MiB"
url = "http://file.example:81"
[log]
level = "debug"
)");
  sources_.env["HUBCACHE_UPSTREAM_CONNECTIONS"] = "3";
  sources_.env["HUBCACHE_UPSTREAM_URL"] = "http://env.example:82/";
  sources_.flags.push_back({"upstream.url", {"http://flag.example:83"}, "--upstream"});
  const Loaded loaded = MustLoad();
  EXPECT_EQ(loaded.config.upstream.chunk_bytes, 16u * 1024 * 1024);  // file only
  EXPECT_EQ(loaded.config.upstream.connections, 3u);                 // env over file
  EXPECT_EQ(loaded.config.upstream.url, "http://flag.example:83");   // flag over env
  EXPECT_EQ(loaded.config.log.level, log::Level::kDebug);
  EXPECT_EQ(loaded.origins.at("upstream.chunk_bytes").Describe(),
            "file " + sources_.config_file);
  EXPECT_EQ(loaded.origins.at("upstream.connections").Describe(),
            "env HUBCACHE_UPSTREAM_CONNECTIONS");
  EXPECT_EQ(loaded.origins.at("upstream.url").Describe(), "flag --upstream");
  EXPECT_EQ(loaded.origins.at("store.max_bytes").Describe(), "default");
}

TEST_F(ConfigTest, ConfigFileFromEnvironmentVariable) {
  sources_.env["HUBCACHE_CONFIG"] = WriteFile("other.toml", "[server]\nthreads = 3\n");
  const Loaded loaded = MustLoad();
  EXPECT_EQ(loaded.config.server.threads, 3u);
  EXPECT_EQ(loaded.config_file, sources_.env["HUBCACHE_CONFIG"]);
}

TEST_F(ConfigTest, ListsFromTomlArraysEnvironmentCommasAndRepeatedFlags) {
  UseFile("[server]\nlisten = [\"127.0.0.1:1\", \"[::1]:2\"]\n");
  EXPECT_EQ(MustLoad().config.server.listen,
            (std::vector<std::string>{"127.0.0.1:1", "[::1]:2"}));
  sources_.env["HUBCACHE_SERVER_LISTEN"] = "127.0.0.1:3, [::]:4";
  EXPECT_EQ(MustLoad().config.server.listen,
            (std::vector<std::string>{"127.0.0.1:3", "[::]:4"}));
  sources_.flags.push_back({"server.listen", {"0.0.0.0:5", "[::]:5"}, "--listen"});
  EXPECT_EQ(MustLoad().config.server.listen,
            (std::vector<std::string>{"0.0.0.0:5", "[::]:5"}));
}

TEST_F(ConfigTest, DurationsSizesAndBooleansInEveryForm) {
  UseFile(R"(
[cache]
ref_ttl = 45
[access]
grant_ttl = "1h30m"
[store]
max_bytes = "500GB"
min_free_percent = 12.5
[upstream]
offline = true
)");
  const Config c = MustLoad().config;
  EXPECT_EQ(c.cache.ref_ttl, seconds(45));
  EXPECT_EQ(c.access.grant_ttl, seconds(5400));
  EXPECT_EQ(c.store.max_bytes, 500'000'000'000u);
  EXPECT_EQ(c.store.min_free_percent, 12.5);
  EXPECT_TRUE(c.upstream.offline);
  sources_.env["HUBCACHE_UPSTREAM_OFFLINE"] = "no";
  EXPECT_FALSE(MustLoad().config.upstream.offline);
}

TEST_F(ConfigTest, PathsExpandHomeAndUrlsLoseTrailingSlash) {
  sources_.flags.push_back({"store.cache_dir", {"~/cache"}, "--cache-dir"});
  sources_.flags.push_back({"upstream.url", {"https://mirror.example/hf/"}, "--upstream"});
  const Config c = MustLoad().config;
  EXPECT_EQ(c.store.cache_dir, "/home/u/cache");
  EXPECT_EQ(c.upstream.url, "https://mirror.example/hf");
}

struct BadValue {
  const char* key;
  const char* value;
  const char* allowed;  // a phrase the message must contain
};

class BadValueTest : public ConfigTest, public ::testing::WithParamInterface<BadValue> {};

// Every validation error names the key, the value, where it came from and
// what is allowed, whichever layer it came from.
TEST_P(BadValueTest, NamesKeyValueOriginAndWhatIsAllowed) {
  const BadValue& bad = GetParam();
  const std::string key = bad.key;
  const std::string env = EnvName(key);
  sources_.env[env] = bad.value;
  std::string message = MustFail();
  EXPECT_NE(message.find(key + " = \"" + bad.value + "\""), std::string::npos) << message;
  EXPECT_NE(message.find("env " + env), std::string::npos) << message;
  EXPECT_NE(message.find(bad.allowed), std::string::npos) << message;

  sources_.env.erase(env);
  sources_.flags.push_back({key, {bad.value}, "--set " + key});
  message = MustFail();
  EXPECT_NE(message.find("flag --set " + key), std::string::npos) << message;
  EXPECT_NE(message.find(bad.allowed), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, BadValueTest,
    ::testing::Values(
        BadValue{"server.listen", "localhost:8080", "IPv4:PORT or [IPv6]:PORT"},
        BadValue{"server.listen", "127.0.0.1:99999", "IPv4:PORT or [IPv6]:PORT"},
        BadValue{"server.public_url", "ftp://x", "http:// or https:// URL"},
        BadValue{"server.threads", "many", "whole number from 0 to 256"},
        BadValue{"server.threads", "257", "whole number from 0 to 256"},
        BadValue{"server.max_connections", "0", "from 1 to 1000000"},
        BadValue{"server.max_header_bytes", "10", "size such as 500GB"},
        BadValue{"server.request_timeout", "soon", "duration such as 30s, 5m or 1h30m"},
        BadValue{"server.idle_timeout", "0s", "from 100ms to 1d"},
        BadValue{"server.shutdown_timeout", "-5s", "duration such as"},
        BadValue{"store.cache_dir", "", "non-empty"},
        BadValue{"store.max_bytes", "lots", "size such as 500GB, 8MiB or 1048576"},
        BadValue{"store.min_free_percent", "100", "percentage from 0 to 99"},
        BadValue{"store.min_free_percent", "ten", "percentage"},
        BadValue{"upstream.url", "huggingface.co", "http:// or https:// URL"},
        BadValue{"upstream.url", "https://user:pw@hf.co", "without credentials"},
        BadValue{"upstream.url", "https://hf.co/?x=1", "without credentials, query"},
        BadValue{"upstream.proxy", "socks5://proxy:1080", "http://[user:password@]host:port"},
        BadValue{"upstream.connections", "0", "from 1 to 64"},
        BadValue{"upstream.chunk_bytes", "1KiB", "from 64KiB to 1GiB"},
        BadValue{"upstream.connect_timeout", "50ms", "from 100ms to 1d"},
        BadValue{"upstream.max_retries", "21", "from 0 to 20"},
        BadValue{"upstream.offline", "maybe", "true or false"},
        BadValue{"cache.ref_ttl", "30x", "duration such as"},
        BadValue{"access.public_ttl", "1y", "duration such as"},
        BadValue{"access.grant_ttl", "", "duration such as"},
        BadValue{"access.offline_grant_ttl", "later", "duration such as"},
        BadValue{"log.level", "verbose", "trace, debug, info, warn, error, off"},
        BadValue{"log.format", "xml", "text or json"}),
    [](const ::testing::TestParamInfo<BadValue>& info) {
      std::string name = std::to_string(info.index) + "_" + info.param.key;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST_F(ConfigTest, BadValueInFileNamesTheFile) {
  UseFile("[upstream]\nconnections = 100\n");
  const std::string message = MustFail();
  EXPECT_NE(message.find("upstream.connections = \"100\" (file " + sources_.config_file + ")"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("from 1 to 64"), std::string::npos) << message;
}

TEST_F(ConfigTest, WrongTomlTypesAreErrors) {
  UseFile("[server]\nlisten = { a = 1 }\n[upstream]\nurl = [\"a\", \"b\"]\n");
  const std::string message = MustFail();
  EXPECT_NE(message.find("server.listen"), std::string::npos) << message;
  EXPECT_NE(message.find("expected a value, got a table"), std::string::npos) << message;
  EXPECT_NE(message.find("upstream.url"), std::string::npos) << message;
  EXPECT_NE(message.find("expected a single value"), std::string::npos) << message;
}

TEST_F(ConfigTest, UnknownKeyInFileSuggestsTheClosest) {
  UseFile("[server]\nlistn = \"127.0.0.1:1\"\n");
  const std::string message = MustFail();
  EXPECT_NE(message.find("unknown key server.listn; did you mean server.listen?"),
            std::string::npos)
      << message;
}

TEST_F(ConfigTest, UnknownSectionSuggestsTheClosest) {
  UseFile("[upstrem]\nurl = \"https://x\"\n");
  const std::string message = MustFail();
  EXPECT_NE(message.find("unknown section [upstrem]; did you mean [upstream]?"),
            std::string::npos)
      << message;
}

TEST_F(ConfigTest, TopLevelValueIsAnError) {
  UseFile("listen = \"127.0.0.1:1\"\n");
  const std::string message = MustFail();
  EXPECT_NE(message.find("unknown section [listen]"), std::string::npos) << message;
}

TEST_F(ConfigTest, UnknownEnvironmentVariableSuggestsTheClosest) {
  sources_.env["HUBCACHE_STORE_CACHEDIR"] = "/x";
  const std::string message = MustFail();
  EXPECT_NE(message.find("unknown environment variable HUBCACHE_STORE_CACHEDIR; did you "
                         "mean HUBCACHE_STORE_CACHE_DIR?"),
            std::string::npos)
      << message;
}

TEST_F(ConfigTest, UnknownFlagKeySuggestsTheClosest) {
  sources_.flags.push_back({"upstream.conections", {"4"}, "--set upstream.conections"});
  const std::string message = MustFail();
  EXPECT_NE(message.find("unknown key upstream.conections; did you mean upstream.connections?"),
            std::string::npos)
      << message;
}

TEST_F(ConfigTest, NoSuggestionForSomethingFarAway) {
  UseFile("[server]\nzzzzzzzzzz = 1\n");
  const std::string message = MustFail();
  EXPECT_NE(message.find("unknown key server.zzzzzzzzzz"), std::string::npos) << message;
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
}

TEST_F(ConfigTest, SyntaxErrorNamesFileAndLine) {
  UseFile("[server]\nthreads = = 2\n");
  const std::string message = MustFail();
  EXPECT_NE(message.find(sources_.config_file + " line 2"), std::string::npos) << message;
}

TEST_F(ConfigTest, MissingConfigFileIsAnError) {
  sources_.config_file = (dir_ / "nope.toml").string();
  const std::string message = MustFail();
  EXPECT_NE(message.find("nope.toml: no such file"), std::string::npos) << message;
}

TEST_F(ConfigTest, MissingCaFileIsAnError) {
  sources_.flags.push_back({"upstream.ca_file", {(dir_ / "ca.pem").string()}, "--upstream-ca-file"});
  const std::string message = MustFail();
  EXPECT_NE(message.find("upstream.ca_file"), std::string::npos) << message;
  EXPECT_NE(message.find("no such file"), std::string::npos) << message;
  EXPECT_NE(message.find("flag --upstream-ca-file"), std::string::npos) << message;
  WriteFile("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  MustLoad();
}

TEST_F(ConfigTest, ReportsEveryProblemAtOnce) {
  UseFile("[server]\nthreads = \"x\"\n[log]\nlevel = \"loud\"\n");
  sources_.env["HUBCACHE_UPSTREAM_CONNECTIONS"] = "0";
  const std::string message = MustFail();
  EXPECT_NE(message.find("server.threads"), std::string::npos) << message;
  EXPECT_NE(message.find("log.level"), std::string::npos) << message;
  EXPECT_NE(message.find("upstream.connections"), std::string::npos) << message;
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 2) << message;
}

TEST_F(ConfigTest, ProxyFromTheUsualEnvironmentVariables) {
  sources_.env["HTTPS_PROXY"] = "http://proxy.internal:3128";
  sources_.env["NO_PROXY"] = "localhost,.internal";
  Loaded loaded = MustLoad();
  EXPECT_EQ(loaded.config.upstream.proxy, "http://proxy.internal:3128");
  EXPECT_EQ(loaded.config.upstream.no_proxy, "localhost,.internal");
  EXPECT_EQ(loaded.origins.at("upstream.proxy").Describe(), "env HTTPS_PROXY");
  // Our own key wins over the generic variable.
  sources_.env["HUBCACHE_UPSTREAM_PROXY"] = "http://other:8080";
  EXPECT_EQ(MustLoad().config.upstream.proxy, "http://other:8080");
  // A plain-http upstream uses HTTP_PROXY instead.
  sources_.env.erase("HUBCACHE_UPSTREAM_PROXY");
  sources_.env["HUBCACHE_UPSTREAM_URL"] = "http://mirror:8000";
  sources_.env["http_proxy"] = "http://plain:3128";
  EXPECT_EQ(MustLoad().config.upstream.proxy, "http://plain:3128");
}

TEST_F(ConfigTest, ProxyPasswordNeverEchoed) {
  sources_.env["HUBCACHE_UPSTREAM_PROXY"] = "http://user:hunter2@proxy:3128";
  const Loaded loaded = MustLoad();
  EXPECT_EQ(loaded.config.upstream.proxy, "http://user:hunter2@proxy:3128");
  const std::string rendered = Render(loaded);
  EXPECT_EQ(rendered.find("hunter2"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("http://user:[redacted]@proxy:3128"), std::string::npos) << rendered;
  sources_.env["HUBCACHE_UPSTREAM_PROXY"] = "http://user:hunter2@proxy:3128/path";
  const std::string message = MustFail();
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
}

TEST_F(ConfigTest, RenderShowsOriginsAndReadsBack) {
  UseFile("[server]\nthreads = 3\n");
  sources_.env["HUBCACHE_STORE_MAX_BYTES"] = "2TB";
  sources_.flags.push_back({"log.level", {"warn"}, "--log-level"});
  const Loaded loaded = MustLoad();
  const std::string rendered = Render(loaded);
  EXPECT_NE(rendered.find("threads = 3  # file " + sources_.config_file), std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("max_bytes = \"2TB\"  # env HUBCACHE_STORE_MAX_BYTES"),
            std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("level = \"warn\"  # flag --log-level"), std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("ref_ttl = \"30s\"  # default"), std::string::npos) << rendered;

  // The rendered text is a config file that yields the same configuration.
  Sources again;
  again.env = {{"HOME", "/elsewhere"}};
  again.config_file = WriteFile("rendered.toml", rendered);
  auto reloaded = Load(again);
  ASSERT_TRUE(reloaded) << reloaded.error();
  EXPECT_EQ(Render(Loaded{reloaded->config, "", loaded.origins}),
            Render(Loaded{loaded.config, "", loaded.origins}));
}

// The sample config documents every key, commented out at its default; with
// the values uncommented it must load as is.
TEST_F(ConfigTest, SampleConfigHasEveryKeyAndLoads) {
  const std::string sample = ReadSource("config/hubcache.toml");
  ASSERT_FALSE(sample.empty());
  std::string uncommented;
  std::istringstream lines(sample);
  std::string line;
  const std::regex commented_key(R"(^# ?([a-z_]+ = .*)$)");
  const std::regex section(R"(^\[([a-z_]+)\])");
  std::string current;
  std::set<std::string> keys_seen;
  for (std::smatch m; std::getline(lines, line);) {
    if (std::regex_search(line, m, section)) current = m[1];
    if (std::regex_match(line, m, commented_key)) {
      line = m[1];
      keys_seen.insert(current + "." + line.substr(0, line.find(' ')));
    }
    uncommented += line + "\n";
  }
  for (const std::string& key : AllKeys()) {
    EXPECT_TRUE(keys_seen.count(key)) << "config/hubcache.toml lacks " << key;
  }
  for (const std::string& key : keys_seen) {
    EXPECT_NE(std::find(AllKeys().begin(), AllKeys().end(), key), AllKeys().end())
        << "config/hubcache.toml documents unknown key " << key;
  }
  sources_.config_file = WriteFile("sample.toml", uncommented);
  const Loaded loaded = MustLoad();
  // The sample shows the defaults, so it changes nothing but the cache dir.
  Config defaults;
  defaults.store.cache_dir = loaded.config.store.cache_dir;
  Loaded expected{defaults, "", loaded.origins};
  EXPECT_EQ(Render(Loaded{loaded.config, "", loaded.origins}), Render(expected));
}

TEST_F(ConfigTest, ReadmeDocumentsEveryKeyAndVariable) {
  const std::string readme = ReadSource("README.md");
  ASSERT_FALSE(readme.empty());
  for (const std::string& key : AllKeys()) {
    EXPECT_NE(readme.find("`" + key + "`"), std::string::npos) << "README lacks " << key;
    EXPECT_NE(readme.find("`" + EnvName(key) + "`"), std::string::npos)
        << "README lacks " << EnvName(key);
  }
}

TEST_F(ConfigTest, EnvNames) {
  EXPECT_EQ(EnvName("store.cache_dir"), "HUBCACHE_STORE_CACHE_DIR");
  EXPECT_EQ(EnvName("upstream.chunk_bytes"), "HUBCACHE_UPSTREAM_CHUNK_BYTES");
}

TEST_F(ConfigTest, RedactUrl) {
  EXPECT_EQ(RedactUrl("http://u:p@h:1/x"), "http://u:[redacted]@h:1/x");
  EXPECT_EQ(RedactUrl("http://u@h:1"), "http://u@h:1");
  EXPECT_EQ(RedactUrl("http://h:1"), "http://h:1");
}

TEST(ConfigKeysTest, TheReloadableKeysAreDeclaredInTheKeyTable) {
  for (const char* key : {"log.level", "log.format", "cache.ref_ttl", "access.public_ttl",
                          "access.grant_ttl", "access.offline_grant_ttl"}) {
    EXPECT_TRUE(IsReloadableKey(key)) << key;
  }
  for (const char* key : {"server.listen", "store.cache_dir", "upstream.url", "store.max_bytes",
                          "log", "nonsense.key", ""}) {
    EXPECT_FALSE(IsReloadableKey(key)) << key;
  }
}

}  // namespace
}  // namespace hubcache::config
