// The status page's files (daemon/status/), embedded in the binary at build
// time by daemon/status/embed.cmake: the page works air-gapped and needs
// nothing installed beside the binary.
#pragma once

#include <span>
#include <string_view>

namespace hubcache::daemon {

struct StatusAsset {
  std::string_view name;     // "index.html", "status.css", "status.js"
  std::string_view content;
};

std::span<const StatusAsset> StatusAssets();

}  // namespace hubcache::daemon
