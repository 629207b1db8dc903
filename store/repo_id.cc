#include "store/repo_id.h"

#include <algorithm>

namespace hubcache::store {

std::optional<RepoType> ParseRepoType(std::string_view text) {
  if (text == "model" || text == "models") return RepoType::kModel;
  if (text == "dataset" || text == "datasets") return RepoType::kDataset;
  if (text == "space" || text == "spaces") return RepoType::kSpace;
  return std::nullopt;
}

std::string_view RepoTypeName(RepoType type) {
  switch (type) {
    case RepoType::kDataset: return "dataset";
    case RepoType::kSpace: return "space";
    case RepoType::kModel: break;
  }
  return "model";
}

std::string_view RepoTypePlural(RepoType type) {
  switch (type) {
    case RepoType::kDataset: return "datasets";
    case RepoType::kSpace: return "spaces";
    case RepoType::kModel: break;
  }
  return "models";
}

std::string_view RepoTypePrefix(RepoType type) {
  switch (type) {
    case RepoType::kDataset: return "datasets/";
    case RepoType::kSpace: return "spaces/";
    case RepoType::kModel: break;
  }
  return "";
}

bool IsCommitHash(std::string_view text) {
  return text.size() == 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace hubcache::store
