#include "daemon/ops.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/log.h"
#include "daemon/cli.h"
#include "daemon/human.h"
#include "daemon/store_command.h"
#include "store/bundle.h"
#include "store/hf_cache.h"

namespace hubcache::daemon {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// The index of the cache directory, opened beside a running daemon if there
// is one. Prints why not and returns nullptr on failure.
std::unique_ptr<store::Index> OpenIndex(const config::Config& config) {
  const fs::path dir = fs::path(config.store.cache_dir) / "index";
  std::error_code ec;
  if (!fs::exists(dir / "data.mdb", ec)) {
    fmt::print(stderr, "hubcache: {} holds no hubcache store (no index/ directory)\n",
               config.store.cache_dir);
    return nullptr;
  }
  auto index = store::Index::Open(dir);
  if (!index) {
    fmt::print(stderr, "hubcache: cannot open the index in {}: {}\n", dir.string(),
               index.error().message());
    return nullptr;
  }
  return std::move(*index);
}

std::string Refs(const store::RepoSummary& repo, const std::string& commit) {
  std::string out;
  for (const auto& [rev, c] : repo.refs) {
    if (c == commit) out += (out.empty() ? "" : ", ") + rev;
  }
  return out;
}

Json SummaryJson(const store::RepoSummary& repo) {
  Json refs = Json::object();
  for (const auto& [rev, commit] : repo.refs) refs[rev] = commit;
  Json commits = Json::array();
  std::uint64_t bytes = 0;
  for (const auto& c : repo.commits) {
    commits.push_back({{"commit", c.commit},
                       {"files", c.files},
                       {"bytes", c.bytes},
                       {"cached_files", c.cached_files},
                       {"cached_bytes", c.cached_bytes}});
    bytes += c.cached_bytes;
  }
  return {{"repo", store::RepoLabel(repo.repo)},
          {"type", store::RepoTypeName(repo.repo.type)},
          {"name", repo.repo.name},
          {"refs", refs},
          {"commits", commits},
          {"cached_bytes", bytes},
          {"last_access", repo.last_access},
          {"pins", repo.pins}};
}

// The files of `commit`, for `ls REPO`.
Result<Json> FilesJson(const store::Index& index, const store::RepoId& repo,
                       const std::string& commit) {
  Json files = Json::array();
  auto scan = index.ForEachFile(repo, commit, [&](std::string_view path,
                                                  const store::FileRecord& file) {
    if (!file.exists || !file.digest) return true;
    auto blob = index.GetBlob(*file.digest);
    files.push_back({{"path", path},
                     {"size", file.size},
                     {"lfs", file.lfs},
                     {"digest", file.digest->Hex()},
                     {"cached", blob && blob->has_value()}});
    return true;
  });
  if (!scan) return Fail(scan.error());
  return files;
}

}  // namespace

int Ls(const config::Loaded& loaded, const std::optional<store::RepoSpec>& repo, bool json) {
  log::Configure(loaded.config.log);
  auto index = OpenIndex(loaded.config);
  if (!index) return kExitFailure;
  auto summaries = store::Summarize(*index);
  if (!summaries) {
    fmt::print(stderr, "hubcache: ls failed: {}\n", summaries.error().message());
    return kExitFailure;
  }
  if (!repo) {
    if (json) {
      Json out = {{"repos", Json::array()}};
      for (const auto& s : *summaries) out["repos"].push_back(SummaryJson(s));
      fmt::print("{}\n", out.dump(2));
      return kExitOk;
    }
    if (summaries->empty()) {
      fmt::print("{} holds no repositories\n", loaded.config.store.cache_dir);
      return kExitOk;
    }
    fmt::print("{:<44} {:<28} {:>7} {:>11} {:>7}  {}\n", "REPO", "REVISIONS", "FILES", "SIZE",
               "CACHED", "LAST ACCESS");
    for (const auto& s : *summaries) {
      std::uint64_t files = 0, bytes = 0, cached = 0;
      for (const auto& c : s.commits) {
        files += c.files;
        bytes += c.bytes;
        cached += c.cached_bytes;
      }
      std::string revisions;
      for (const auto& [rev, commit] : s.refs) {
        revisions += fmt::format("{}{}→{}", revisions.empty() ? "" : " ", rev, commit.substr(0, 7));
      }
      if (revisions.empty()) revisions = fmt::format("{} commit(s)", s.commits.size());
      const std::string share =
          bytes == 0 ? "-" : fmt::format("{}%", cached * 100 / bytes);
      fmt::print("{:<44} {:<28} {:>7} {:>11} {:>7}  {}{}\n", store::RepoLabel(s.repo), revisions,
                 files, HumanSize(bytes), share, HumanTime(s.last_access),
                 s.pins.empty() ? "" : "  pinned");
    }
    return kExitOk;
  }

  auto found = std::find_if(summaries->begin(), summaries->end(),
                            [&](const auto& s) { return s.repo == repo->repo; });
  if (found == summaries->end()) {
    fmt::print(stderr, "hubcache: {} is not in the cache\n", store::RepoLabel(repo->repo));
    return kExitFailure;
  }
  std::optional<std::string> only;
  if (!repo->revision.empty()) {
    auto commit = store::ResolveLocally(*index, repo->repo, repo->revision);
    if (!commit || !*commit) {
      fmt::print(stderr, "hubcache: revision {} of {} is not in the cache\n", repo->revision,
                 store::RepoLabel(repo->repo));
      return kExitFailure;
    }
    only = **commit;
  }
  Json out = SummaryJson(*found);
  Json commits = Json::array();
  for (auto& c : out["commits"]) {
    if (only && c["commit"] != *only) continue;
    auto files = FilesJson(*index, repo->repo, c["commit"].get<std::string>());
    if (!files) {
      fmt::print(stderr, "hubcache: ls failed: {}\n", files.error().message());
      return kExitFailure;
    }
    c["files_list"] = std::move(*files);
    commits.push_back(std::move(c));
  }
  out["commits"] = std::move(commits);
  if (json) {
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{} ({}), last access {}{}\n", out["repo"].get<std::string>(),
             store::RepoTypeName(repo->repo.type), HumanTime(found->last_access),
             found->pins.empty() ? "" : ", pinned");
  for (const auto& c : out["commits"]) {
    const std::string commit = c["commit"];
    const std::string refs = Refs(*found, commit);
    fmt::print("commit {}{}: {} files, {}, {} cached\n", commit,
               refs.empty() ? "" : " (" + refs + ")", c["files"].get<std::uint64_t>(),
               HumanSize(c["bytes"].get<std::uint64_t>()),
               HumanSize(c["cached_bytes"].get<std::uint64_t>()));
    for (const auto& f : c["files_list"]) {
      fmt::print("  {:>11}  {:<3} {:<6} {}\n", HumanSize(f["size"].get<std::uint64_t>()),
                 f["lfs"].get<bool>() ? "lfs" : "", f["cached"].get<bool>() ? "cached" : "-",
                 f["path"].get<std::string>());
    }
  }
  return kExitOk;
}

int Rm(const config::Loaded& loaded, const store::RepoSpec& spec) {
  log::Configure(loaded.config.log);
  auto opened = OpenStoreForCommand(loaded.config, "rm", /*recover=*/true);
  if (!opened) return kExitFailure;
  const std::string label = store::SpecLabel(spec);
  auto summaries = store::Summarize(opened->store->index());
  const bool known = summaries && std::any_of(summaries->begin(), summaries->end(),
                                              [&](const auto& s) { return s.repo == spec.repo; });
  if (!known) {
    fmt::print(stderr, "hubcache: {} is not in the cache\n", store::RepoLabel(spec.repo));
    return kExitFailure;
  }
  auto report = store::Remove(*opened->store, spec);
  if (!report) {
    fmt::print(stderr, "hubcache: rm {} failed: {}\n", label, report.error().message());
    return kExitFailure;
  }
  fmt::print("removed {}: {} index entries, {} blobs ({}){}\n", label, report->entries,
             report->blobs, HumanSize(report->bytes),
             report->pins ? fmt::format(", {} pin(s)", report->pins) : "");
  return kExitOk;
}

int Pin(const config::Loaded& loaded, const store::RepoSpec& spec) {
  log::Configure(loaded.config.log);
  auto index = OpenIndex(loaded.config);
  if (!index) return kExitFailure;
  std::vector<std::string> commits;
  if (!spec.revision.empty()) {
    auto commit = store::ResolveLocally(*index, spec.repo, spec.revision);
    if (!commit || !*commit) {
      fmt::print(stderr,
                 "hubcache: revision {} of {} is not in the cache; prefetch it first\n",
                 spec.revision, store::RepoLabel(spec.repo));
      return kExitFailure;
    }
    commits.push_back(**commit);
  } else {
    auto summaries = store::Summarize(*index);
    if (summaries) {
      for (const auto& s : *summaries) {
        if (s.repo != spec.repo) continue;
        for (const auto& c : s.commits) commits.push_back(c.commit);
      }
    }
  }
  std::vector<store::Digest> digests;
  std::uint64_t bytes = 0;
  for (const std::string& commit : commits) {
    auto scan = index->ForEachFile(spec.repo, commit, [&](std::string_view,
                                                          const store::FileRecord& file) {
      if (file.exists && file.digest) {
        digests.push_back(*file.digest);
        bytes += file.size;
      }
      return true;
    });
    if (!scan) {
      fmt::print(stderr, "hubcache: pin failed: {}\n", scan.error().message());
      return kExitFailure;
    }
  }
  if (digests.empty()) {
    fmt::print(stderr, "hubcache: {} has no cached files to pin; prefetch it first\n",
               store::SpecLabel(spec));
    return kExitFailure;
  }
  const std::string name =
      store::PinName(spec.repo, spec.revision.empty() ? "*" : spec.revision);
  if (auto pinned = index->Pin(name, digests); !pinned) {
    fmt::print(stderr, "hubcache: pin failed: {}\n", pinned.error().message());
    return kExitFailure;
  }
  fmt::print("pinned {}: {} files ({}) in {} commit(s); eviction keeps them until unpinned\n",
             name, digests.size(), HumanSize(bytes), commits.size());
  return kExitOk;
}

int Unpin(const config::Loaded& loaded, const store::RepoSpec& spec) {
  log::Configure(loaded.config.log);
  auto index = OpenIndex(loaded.config);
  if (!index) return kExitFailure;
  const std::string prefix = store::PinName(spec.repo, "");
  std::set<std::string> names;
  auto scan = index->ForEachPin([&](std::string_view name, const store::Digest&) {
    if (spec.revision.empty() ? name.starts_with(prefix)
                              : name == store::PinName(spec.repo, spec.revision)) {
      names.emplace(name);
    }
    return true;
  });
  if (!scan) {
    fmt::print(stderr, "hubcache: unpin failed: {}\n", scan.error().message());
    return kExitFailure;
  }
  if (names.empty()) {
    fmt::print(stderr, "hubcache: {} is not pinned\n",
               store::SpecLabel(spec));
    return kExitFailure;
  }
  for (const std::string& name : names) {
    auto removed = index->Unpin(name);
    if (!removed) {
      fmt::print(stderr, "hubcache: unpin failed: {}\n", removed.error().message());
      return kExitFailure;
    }
    fmt::print("unpinned {} ({} blobs)\n", name, *removed);
  }
  return kExitOk;
}

int Export(const config::Loaded& loaded, const std::vector<store::RepoSpec>& specs,
           const std::string& out, const std::string& hf_cache) {
  log::Configure(loaded.config.log);
  auto index = OpenIndex(loaded.config);
  if (!index) return kExitFailure;
  const fs::path cache_dir = loaded.config.store.cache_dir;
  if (!out.empty()) {
    auto report = store::ExportBundle(*index, cache_dir, specs, out);
    if (!report) {
      fmt::print(stderr, "hubcache: export failed: {}\n", report.error());
      return kExitFailure;
    }
    fmt::print("exported {} repos ({} commits, {} files, {} in {} blobs) to bundle {}\n",
               report->repos, report->commits, report->files, HumanSize(report->bytes),
               report->blobs_copied + report->blobs_present, out);
  }
  if (!hf_cache.empty()) {
    auto report = store::ExportHfCache(*index, cache_dir, specs, hf_cache);
    if (!report) {
      fmt::print(stderr, "hubcache: export --hf-cache failed: {}\n", report.error());
      return kExitFailure;
    }
    fmt::print("exported {} repos ({} commits, {} files, {}) to the huggingface_hub cache {}; "
               "use it with HF_HUB_CACHE={} HF_HUB_OFFLINE=1\n",
               report->repos, report->commits, report->files, HumanSize(report->bytes), hf_cache,
               hf_cache);
  }
  return kExitOk;
}

int Import(const config::Loaded& loaded, const std::string& dir, bool hf_cache,
           bool mark_public) {
  log::Configure(loaded.config.log);
  auto opened = OpenStoreForCommand(loaded.config, "import", /*recover=*/true);
  if (!opened) return kExitFailure;
  if (hf_cache) {
    auto report = store::ImportHfCache(*opened->store, dir, mark_public);
    if (!report) {
      fmt::print(stderr, "hubcache: import --hf-cache failed: {}\n", report.error());
      return kExitFailure;
    }
    for (const std::string& problem : report->problems) fmt::print("  SKIPPED {}\n", problem);
    fmt::print("imported {} repos ({} commits, {} files, {} refs) from {}: {} blobs added ({}), "
               "{} problems{}\n",
               report->repos, report->commits, report->files, report->refs, dir,
               report->blobs_added, HumanSize(report->bytes_added), report->problems.size(),
               mark_public ? "" : "; served only to clients with a grant until the Hub confirms "
                                  "them public (--mark-public serves them to everyone)");
    return report->problems.empty() ? kExitOk : kExitFailure;
  }
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  std::size_t checked = 0;
  auto report = store::ImportBundle(
      *opened->store, dir, mark_public, [&](const std::string& digest, std::uint64_t size) {
        ++checked;
        if (terminal) {
          fmt::print(stderr, "\r\x1b[2Kverifying blob {} {} ({})", checked, digest.substr(0, 12),
                     HumanSize(size));
        }
      });
  if (terminal) fmt::print(stderr, "\r\x1b[2K");
  if (!report) {
    fmt::print(stderr, "hubcache: import failed: {}\n", report.error());
    return kExitFailure;
  }
  bool ok = report->problems.empty();
  for (const std::string& problem : report->problems) fmt::print("  REJECTED blob: {}\n", problem);
  for (const auto& repo : report->repos) {
    if (!repo.imported) {
      ok = false;
      fmt::print("  REJECTED {}: {}; nothing of it was indexed\n", repo.label, repo.problem);
      continue;
    }
    fmt::print("  imported {}: {} commits, {} files, {} refs{}\n", repo.label, repo.commits,
               repo.files, repo.refs,
               repo.restricted && !mark_public
                   ? " (gated or private upstream: served offline only to clients with a grant; "
                     "--mark-public serves it to everyone)"
                   : "");
  }
  fmt::print("import of {}: {} blobs added ({}), {} already present, {} rejected\n", dir,
             report->blobs_added, HumanSize(report->bytes_added), report->blobs_present,
             report->problems.size());
  return ok ? kExitOk : kExitFailure;
}

}  // namespace hubcache::daemon
