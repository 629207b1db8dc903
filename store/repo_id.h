// RepoId: a repository as the Hub names it, and the small vocabulary around
// it that every module spells the same way: repo type names (singular for
// the CLI and manifests, plural for API paths, URL prefixes) and what counts
// as a commit hash. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hubcache::store {

enum class RepoType : std::uint8_t { kModel = 1, kDataset = 2, kSpace = 3 };

// A repository as the Hub names it: type plus "namespace/name" (or a legacy
// name without namespace).
struct RepoId {
  RepoType type = RepoType::kModel;
  std::string name;
  friend bool operator==(const RepoId&, const RepoId&) = default;
  friend auto operator<=>(const RepoId&, const RepoId&) = default;
};

// "model"/"models", "dataset"/"datasets", "space"/"spaces"; nullopt otherwise.
std::optional<RepoType> ParseRepoType(std::string_view text);
// "model", "dataset", "space".
std::string_view RepoTypeName(RepoType type);
// The plural API name: "models", "datasets", "spaces".
std::string_view RepoTypePlural(RepoType type);
// The URL path prefix of a repo type: "" (models), "datasets/", "spaces/".
std::string_view RepoTypePrefix(RepoType type);
// True for a 40-character lower-case hex string (what clients accept as a commit).
bool IsCommitHash(std::string_view text);

}  // namespace hubcache::store
