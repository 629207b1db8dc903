// File helpers shared by tests that build directory trees by hand (bundles,
// huggingface_hub caches) and check what a reader left on disk.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>

namespace hubcache::testing {

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Creates the parent directories and replaces the file.
inline void WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

inline void Symlink(const std::filesystem::path& target, const std::filesystem::path& link) {
  std::filesystem::create_directories(link.parent_path());
  std::filesystem::create_symlink(target, link);
}

// Every path under `dir` with its content or symlink target (directories
// and special files by type only), without following symlinks; LMDB's
// files are left out (their reader table changes with every read). Two
// equal listings show that nothing under `dir` changed.
inline std::map<std::string, std::string> Listing(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = e.path().lexically_relative(dir).string();
    if (e.path().extension() == ".mdb") continue;
    if (e.is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(e.path()).string();
    } else if (e.is_regular_file()) {
      out[rel] = ReadFile(e.path());
    } else {
      out[rel] = e.is_directory() ? "dir" : "special";
    }
  }
  return out;
}

}  // namespace hubcache::testing
