// libFuzzer target: the manifest of an air-gap bundle (store/bundle_manifest.h),
// which comes from another site and is trusted in nothing. Whatever parses
// holds only safe paths and revisions, digests of the kind their lfs flag
// says, one size per blob, refs to commits of the bundle, and document
// headers hubcache stores itself (none that could split a response).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/bundle_manifest.h"
#include "tests/fuzz/require.h"

namespace store = hubcache::store;

using hubcache::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = store::ParseManifest(text);
  if (!manifest) {
    Require(!manifest.error().empty());
    return 0;
  }
  for (const store::ManifestRepo& repo : manifest->repos) {
    Require(!repo.repo.name.empty());
    for (const auto& [commit, files] : repo.commits) {
      Require(store::IsCommitHash(commit));
      for (const store::ManifestFile& file : files) {
        Require(store::SafeRepoPath(file.path));
        Require(!file.path.starts_with('/') && ("/" + file.path + "/").find("/../") == std::string::npos);
        if (!file.record.exists) continue;
        Require(file.record.digest.has_value());
        Require(file.record.lfs ==
                (file.record.digest->kind() == store::DigestKind::kSha256));
        const auto it = manifest->sizes.find(*file.record.digest);
        Require(it != manifest->sizes.end() && it->second == file.record.size);
      }
    }
    for (const auto& [rev, commit] : repo.refs) {
      Require(!rev.empty() && rev.find('\0') == std::string::npos);
      Require(repo.commits.contains(commit));
    }
    for (const auto& doc : repo.docs) {
      Require(doc.revision == "@" || repo.commits.contains(doc.revision) ||
              repo.refs.contains(doc.revision));
      for (const auto& [name, value] : doc.record.headers) {
        Require(store::IsDocHeader(name, value));
        Require(value.find('\r') == std::string::npos && value.find('\n') == std::string::npos);
      }
    }
  }
  return 0;
}
