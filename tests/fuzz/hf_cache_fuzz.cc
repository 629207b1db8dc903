// libFuzzer target: `hubcache import --hf-cache DIR` (store/hf_cache.h)
// reading a client cache that anyone may have written. The input describes
// the folder, one entry per line: a kind, a path under DIR, a tab and a
// payload:
//   f PATH \t CONTENT   a regular file
//   l PATH \t TARGET    a symlink (the target may lead anywhere)
//   d PATH              a directory
//   p PATH              a FIFO (opening it for reading would block)
// The folder is imported into a real store (LMDB index). Beside DIR lies a
// file whose content is random per run: no symlink, however it is bent, may
// bring it into the store. A FIFO must not hang the import; nothing may
// throw.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "store/blob_store.h"
#include "store/digest.h"
#include "store/hf_cache.h"
#include "tests/fuzz/require.h"

namespace store = hubcache::store;
namespace fs = std::filesystem;

using hubcache::fuzz::Require;

namespace {

struct World {
  fs::path base;
  fs::path cache;  // DIR
  std::unique_ptr<store::BlobStore> blobs;
  std::vector<store::Digest> secrets;  // its sha256 and git blob id
};

World& TheWorld() {
  static World* world = [] {
    auto* w = new World;
    std::random_device random;
    w->base = fs::temp_directory_path() /
              ("hubcache-fuzz-hf-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
    fs::create_directories(w->base / "outside");
    std::string secret = "secret ";
    for (int i = 0; i < 4; ++i) secret += std::to_string(random());
    std::ofstream(w->base / "outside" / "secret.bin", std::ios::binary) << secret;
    for (auto kind : {store::DigestKind::kSha256, store::DigestKind::kGitSha1}) {
      store::Hasher hasher(kind, secret.size());
      hasher.Update(secret);
      w->secrets.push_back(hasher.Finish());
    }
    w->cache = w->base / "in" / "hf";
    store::Options options;
    options.cache_dir = (w->base / "store").string();
    options.min_free_percent = 0;
    auto opened = store::BlobStore::Open(options);
    Require(opened.has_value());
    w->blobs = std::move(*opened);
    hubcache::log::Configure({.level = hubcache::log::Level::kError});
    return w;
  }();
  return *world;
}

// A path that stays under DIR (the tree is built there; symlink targets are
// what may point elsewhere).
bool Inside(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) return false;
  const std::string wrapped = "/" + std::string(path) + "/";
  return wrapped.find("/../") == std::string::npos && wrapped.find("/./") == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  World& w = TheWorld();
  std::error_code ec;
  fs::remove_all(w.base / "in", ec);
  fs::create_directories(w.cache, ec);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  bool mark_public = false;
  int entries = 0;
  while (!text.empty() && entries < 64) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.size() < 2) {
      mark_public = !mark_public;
      continue;
    }
    const char kind = line[0];
    line.remove_prefix(1);
    const std::size_t tab = line.find('\t');
    const std::string_view path = line.substr(0, tab);
    const std::string_view payload = tab == std::string_view::npos ? "" : line.substr(tab + 1);
    if (!Inside(path)) continue;
    const fs::path at = w.cache / std::string(path);
    fs::create_directories(at.parent_path(), ec);
    ++entries;
    switch (kind) {
      case 'f':
        std::ofstream(at, std::ios::binary) << payload;
        break;
      case 'l':
        fs::create_symlink(std::string(payload), at, ec);
        break;
      case 'd':
        fs::create_directories(at, ec);
        break;
      case 'p':
        ::mkfifo(at.c_str(), 0600);
        break;
      default:
        break;
    }
  }
  auto report = store::ImportHfCache(*w.blobs, w.cache, mark_public);
  Require(report.has_value());
  for (const store::Digest& secret : w.secrets) {
    auto held = w.blobs->index().GetBlob(secret);
    Require(held.has_value() && !held->has_value());
  }
  return 0;
}
