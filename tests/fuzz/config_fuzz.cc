// libFuzzer target: the configuration loader (config/config.h) on any file
// text. It loads or reports a problem; it never crashes. What loads renders
// to TOML that loads again to the same rendering (but for where each value
// came from).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/config.h"
#include "tests/fuzz/require.h"

using hubcache::fuzz::Require;

namespace {
std::string Write(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = "/tmp/hubcache-fuzz-" + std::to_string(::getpid()) + "-" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  Require(f != nullptr);
  if (size > 0) Require(std::fwrite(data, 1, size, f) == size);
  std::fclose(f);
  return path;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hubcache::config::Sources sources;
  sources.config_file = Write("config.toml", data, size);
  auto loaded = hubcache::config::Load(sources);
  // (A proxy's credentials are redacted in the rendering: it does not load
  // back to the same value.)
  if (loaded && loaded->config.upstream.proxy.empty()) {
    const std::string rendered = hubcache::config::Render(*loaded);
    hubcache::config::Sources again;
    again.config_file = Write("rendered.toml", reinterpret_cast<const std::uint8_t*>(rendered.data()),
                              rendered.size());
    auto reloaded = hubcache::config::Load(again);
    Require(reloaded.has_value());
    hubcache::config::Loaded normalized = *reloaded;
    normalized.config_file = loaded->config_file;
    for (auto& [key, origin] : normalized.origins) origin = loaded->origins.at(key);
    Require(hubcache::config::Render(normalized) == rendered);
  }
  return 0;
}
