#include "store/catalog.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/log.h"

namespace hubcache::store {
namespace {

constexpr std::string_view kTypePrefixes[] = {"datasets/", "spaces/", "models/"};

std::optional<RepoType> TypeFromPrefix(std::string_view prefix) {
  if (prefix == "datasets/") return RepoType::kDataset;
  if (prefix == "spaces/") return RepoType::kSpace;
  if (prefix == "models/") return RepoType::kModel;
  return std::nullopt;
}

bool ValidNamePart(std::string_view part) {
  if (part.empty() || part == "." || part == ".." || part.size() > 96) return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

std::string RepoLabel(const RepoId& repo) {
  return std::string(RepoTypePrefix(repo.type)) + repo.name;
}

std::string SpecLabel(const RepoSpec& spec) {
  return RepoLabel(spec.repo) + (spec.revision.empty() ? "" : "@" + spec.revision);
}

tl::expected<RepoSpec, std::string> ParseRepoSpec(std::string_view text,
                                                  std::optional<RepoType> type) {
  RepoSpec spec;
  const std::string original(text);
  if (const std::size_t at = text.find('@'); at != std::string_view::npos) {
    spec.revision = std::string(text.substr(at + 1));
    text = text.substr(0, at);
    if (spec.revision.empty()) {
      return tl::unexpected("'" + original + "': nothing after '@' (expected a revision)");
    }
    if (spec.revision.find('\0') != std::string::npos || spec.revision.size() > 256) {
      return tl::unexpected("'" + original + "': not a usable revision");
    }
  }
  spec.repo.type = type.value_or(RepoType::kModel);
  if (!type) {
    for (std::string_view prefix : kTypePrefixes) {
      if (text.starts_with(prefix)) {
        spec.repo.type = *TypeFromPrefix(prefix);
        text.remove_prefix(prefix.size());
        break;
      }
    }
  }
  const std::size_t slash = text.find('/');
  const bool two_parts = slash != std::string_view::npos;
  if (two_parts ? !(ValidNamePart(text.substr(0, slash)) &&
                    ValidNamePart(text.substr(slash + 1)))
                : !ValidNamePart(text)) {
    return tl::unexpected("'" + original +
                          "' is not a repository: expected org/name, datasets/org/name or "
                          "spaces/org/name, optionally followed by @REVISION");
  }
  spec.repo.name = std::string(text);
  return spec;
}

std::string PinName(const RepoId& repo, std::string_view revision) {
  return std::string(RepoTypeName(repo.type)) + ":" + repo.name + "@" + std::string(revision);
}

Result<std::optional<std::string>> ResolveLocally(const Index& index, const RepoId& repo,
                                                  std::string_view revision) {
  if (IsCommitHash(revision)) return std::optional<std::string>(std::string(revision));
  auto ref = index.GetRef(repo, revision);
  if (!ref) return Fail(ref.error());
  if (!*ref) return std::optional<std::string>();
  return std::optional<std::string>((*ref)->commit);
}

Result<std::vector<RepoSummary>> Summarize(const Index& index) {
  std::map<RepoId, RepoSummary> repos;
  auto entry = [&](const RepoId& repo) -> RepoSummary& {
    RepoSummary& summary = repos[repo];
    summary.repo = repo;
    return summary;
  };
  // Blob facts, looked up once per digest.
  std::map<Digest, std::optional<BlobRecord>> blobs;
  auto blob = [&](const Digest& d) -> const std::optional<BlobRecord>& {
    auto it = blobs.find(d);
    if (it != blobs.end()) return it->second;
    auto record = index.GetBlob(d);
    return blobs.emplace(d, record ? *record : std::nullopt).first->second;
  };
  std::map<Digest, std::vector<RepoId>> holders;  // for pins
  auto files = index.ForEachFileRecord([&](const RepoId& repo, std::string_view commit,
                                           std::string_view, const FileRecord& file) {
    if (!file.exists || !file.digest) return true;
    RepoSummary& summary = entry(repo);
    if (summary.commits.empty() || summary.commits.back().commit != commit) {
      summary.commits.push_back({.commit = std::string(commit)});
    }
    CommitSummary& c = summary.commits.back();
    c.files += 1;
    c.bytes += file.size;
    if (const auto& record = blob(*file.digest)) {
      c.cached_files += 1;
      c.cached_bytes += file.size;
      summary.last_access = std::max(summary.last_access, record->last_access);
      auto& list = holders[*file.digest];
      if (list.empty() || list.back() != repo) list.push_back(repo);
    }
    return true;
  });
  if (!files) return Fail(files.error());
  auto refs = index.ForEachRef([&](const RepoId& repo, std::string_view revision,
                                   const RefRecord& ref) {
    entry(repo).refs.emplace_back(std::string(revision), ref.commit);
    return true;
  });
  if (!refs) return Fail(refs.error());
  auto pins = index.ForEachPin([&](std::string_view name, const Digest& digest) {
    auto it = holders.find(digest);
    if (it == holders.end()) return true;
    for (const RepoId& repo : it->second) {
      auto& names = entry(repo).pins;
      if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
    }
    return true;
  });
  if (!pins) return Fail(pins.error());
  std::vector<RepoSummary> out;
  out.reserve(repos.size());
  for (auto& [id, summary] : repos) {
    std::sort(summary.refs.begin(), summary.refs.end());
    std::sort(summary.pins.begin(), summary.pins.end());
    out.push_back(std::move(summary));
  }
  return out;
}

Result<RemoveReport> Remove(BlobStore& store, const RepoSpec& spec) {
  Index& index = store.index();
  RemoveReport report;
  // What to forget: commits (files + documents), refs, and document revisions.
  std::set<std::string> commits;
  std::set<std::string> revisions;  // refs to delete and document keys to drop
  std::vector<std::pair<std::string, std::string>> refs;  // of this repo
  auto scan = index.ForEachRef([&](const RepoId& repo, std::string_view revision,
                                   const RefRecord& ref) {
    if (repo == spec.repo) refs.emplace_back(std::string(revision), ref.commit);
    return true;
  });
  if (!scan) return Fail(scan.error());

  std::string pin_prefix = PinName(spec.repo, "");
  std::optional<std::string> only_pin;
  if (!spec.revision.empty()) {
    if (IsCommitHash(spec.revision)) {
      commits.insert(spec.revision);
      for (const auto& [rev, commit] : refs) {
        if (commit == spec.revision) revisions.insert(rev);
      }
    } else {
      auto it = std::find_if(refs.begin(), refs.end(),
                             [&](const auto& r) { return r.first == spec.revision; });
      revisions.insert(spec.revision);
      if (it != refs.end()) {
        const std::string commit = it->second;
        const bool shared = std::any_of(refs.begin(), refs.end(), [&](const auto& r) {
          return r.first != spec.revision && r.second == commit;
        });
        if (!shared) commits.insert(commit);
      }
    }
    only_pin = PinName(spec.repo, spec.revision);
  }

  // The digests the removed records refer to: candidates for deletion.
  std::set<Digest> candidates;
  auto files = index.ForEachFileRecord([&](const RepoId& repo, std::string_view commit,
                                           std::string_view, const FileRecord& file) {
    if (repo == spec.repo && file.digest &&
        (spec.revision.empty() || commits.count(std::string(commit)) > 0)) {
      candidates.insert(*file.digest);
    }
    return true;
  });
  if (!files) return Fail(files.error());

  if (spec.revision.empty()) {
    auto n = index.DeleteRepo(spec.repo);
    if (!n) return Fail(n.error());
    report.entries += *n;
  } else {
    for (const std::string& key : commits) {
      auto n = index.DeleteRevisionData(spec.repo, key);
      if (!n) return Fail(n.error());
      report.entries += *n;
    }
    for (const std::string& rev : revisions) {
      auto docs = index.DeleteRevisionData(spec.repo, rev);
      if (!docs) return Fail(docs.error());
      auto ref = index.DeleteRef(spec.repo, rev);
      if (!ref) return Fail(ref.error());
      report.entries += *docs + *ref;
    }
  }

  // The repo's pins: all of them, or the removed revision's.
  std::set<std::string> pin_names;
  auto pins = index.ForEachPin([&](std::string_view name, const Digest&) {
    if (only_pin ? name == *only_pin : name.starts_with(pin_prefix)) pin_names.emplace(name);
    return true;
  });
  if (!pins) return Fail(pins.error());
  for (const std::string& name : pin_names) {
    if (auto unpinned = index.Unpin(name); !unpinned) return Fail(unpinned.error());
    report.pins += 1;
  }

  // Keep every candidate some remaining file record still refers to.
  auto rest = index.ForEachFileRecord([&](const RepoId&, std::string_view, std::string_view,
                                          const FileRecord& file) {
    if (file.digest) candidates.erase(*file.digest);
    return !candidates.empty();
  });
  if (!rest) return Fail(rest.error());
  for (const Digest& digest : candidates) {
    auto record = index.GetBlob(digest);
    if (!record) return Fail(record.error());
    if (!*record || (*record)->pins > 0) continue;  // absent, or another pin holds it
    auto removed = store.Remove(digest);
    if (!removed) return Fail(removed.error());
    if (*removed) {
      report.blobs += 1;
      report.bytes += (*record)->size;
    }
  }
  log::Info(log::Module::kStore, "repo_removed",
            {{"repo", RepoLabel(spec.repo)},
             {"revision", spec.revision.empty() ? std::string("all") : spec.revision},
             {"entries", report.entries},
             {"blobs", report.blobs},
             {"bytes", report.bytes}});
  return report;
}

}  // namespace hubcache::store
