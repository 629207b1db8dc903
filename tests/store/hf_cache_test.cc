#include "store/hf_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "tests/store/repo_file.h"
#include "tests/support/files.h"
#include "tests/support/bytes.h"
#include "tests/support/temp_dir.h"

namespace hubcache::store {
namespace {

using hubcache::testing::Listing;
using hubcache::testing::ReadFile;
using hubcache::testing::Symlink;
using hubcache::testing::WriteFile;

namespace fs = std::filesystem;

const std::string kCommit(40, 'a');
const std::string kOtherCommit(40, 'b');
const RepoId kModel{RepoType::kModel, "org/model"};

using File = hubcache::testing::RepoFile;

// Import of huggingface_hub cache folders written by hand, as the Python
// client lays them out, then with one thing wrong each.
class HfCacheImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.cache_dir = (dir_ / "store").string();
    options.min_free_percent = 0;
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    fs::create_directories(hf_);
    fs::create_directories(outside_);
  }
  void TearDown() override { store_.reset(); }

  // org/model at kCommit: config.json and sub/model.safetensors (LFS) as
  // relative symlinks into blobs/, ref main, absent.txt known not to exist.
  void WriteValidRepo() {
    for (const File& f : {config_, weights_}) {
      WriteFile(root_ / "blobs" / f.digest().Hex(), f.content);
      Link(kCommit, f.path, f);
    }
    WriteFile(root_ / "refs" / "main", kCommit);
    WriteFile(root_ / ".no_exist" / kCommit / "absent.txt", "");
  }
  // snapshots/<commit>/<path> → ../../blobs/<hex>, one ../ more per folder.
  void Link(const std::string& commit, const std::string& path, const File& f) {
    std::string target;
    for (long i = 0; i < 2 + std::count(path.begin(), path.end(), '/'); ++i) target += "../";
    Symlink(target + "blobs/" + f.digest().Hex(), root_ / "snapshots" / commit / path);
  }

  tl::expected<HfImportReport, std::string> Import(bool mark_public = false) {
    const auto before = Listing(dir_.path() / "hf");
    const auto outside_before = Listing(outside_);
    auto report = ImportHfCache(*store_, hf_, mark_public);
    // The import reads: it changes nothing in the cache or beside it.
    EXPECT_EQ(Listing(hf_), before);
    EXPECT_EQ(Listing(outside_), outside_before);
    return report;
  }

  bool Indexed(const std::string& commit, const std::string& path) {
    return store_->index().GetFile(kModel, commit, path).value().has_value();
  }
  bool Stored(const Digest& digest) {
    return store_->index().GetBlob(digest).value().has_value();
  }
  // Expects `path` at `commit` skipped with a problem naming it, and its
  // bytes (`digest`) kept out of the store.
  void ExpectSkipped(const HfImportReport& report, const std::string& commit,
                     const std::string& path, const Digest& digest) {
    EXPECT_FALSE(Indexed(commit, path)) << path;
    EXPECT_FALSE(Stored(digest)) << path;
    bool named = false;
    for (const auto& problem : report.problems) {
      if (problem.find(path) != std::string::npos) named = true;
    }
    EXPECT_TRUE(named) << path << " is in no problem";
  }
  // No file in blobs/ or staging/ that the index does not list.
  void ExpectStoreHoldsOnlyIndexedBlobs() {
    for (const auto& e : fs::recursive_directory_iterator(store_->root() / "blobs")) {
      if (!e.is_regular_file()) continue;
      auto digest = Digest::ParseHex(e.path().filename().string());
      ASSERT_TRUE(digest) << e.path();
      EXPECT_TRUE(Stored(*digest)) << e.path();
    }
    for (const auto& e : fs::recursive_directory_iterator(store_->root() / "staging")) {
      ADD_FAILURE() << "left in staging: " << e.path();
    }
  }

  testing::TempDir dir_{"hubcache-hf-cache-test"};
  const fs::path hf_ = dir_ / "hf";
  const fs::path root_ = hf_ / "models--org--model";
  const fs::path outside_ = dir_ / "outside";
  std::unique_ptr<BlobStore> store_;
  const File config_{"config.json", R"({"model_type": "llama"})", false};
  const File weights_{"sub/model.safetensors", testing::Content(100'000, 1), true};
  // Bytes that live outside the cache folder.
  const File secret_{"secret.txt", "the operator's private notes\n", false};
};

TEST_F(HfCacheImportTest, AClientCacheIsImported) {
  WriteValidRepo();
  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
  EXPECT_EQ(report->repos, 1u);
  EXPECT_EQ(report->commits, 1u);
  EXPECT_EQ(report->files, 2u);
  EXPECT_EQ(report->refs, 1u);
  EXPECT_EQ(report->blobs_added, 2u);
  for (const File& f : {config_, weights_}) {
    auto record = store_->index().GetFile(kModel, kCommit, f.path);
    ASSERT_TRUE(record && *record) << f.path;
    EXPECT_EQ(**record, (FileRecord{.exists = true, .lfs = f.lfs, .digest = f.digest(),
                                    .size = f.content.size()}));
    auto blob = store_->Lookup(f.digest());
    ASSERT_TRUE(blob);
    EXPECT_EQ(testing::ReadAll(blob->fd.get()), f.content);
  }
  auto negative = store_->index().GetFile(kModel, kCommit, "absent.txt");
  ASSERT_TRUE(negative && *negative);
  EXPECT_FALSE((*negative)->exists);
  EXPECT_EQ(store_->index().GetRef(kModel, "main").value()->commit, kCommit);
  // Without --mark-public nothing says who may read it: the Hub decides.
  EXPECT_FALSE(store_->index().GetAccess(kModel).value().has_value());
  ExpectStoreHoldsOnlyIndexedBlobs();

  ASSERT_TRUE(Import(/*mark_public=*/true));
  EXPECT_EQ(store_->index().GetAccess(kModel).value()->visibility, Visibility::kPublic);
}

TEST_F(HfCacheImportTest, FilesCopiedIntoSnapshotsAndAbsoluteLinksIntoBlobsAreImported) {
  // huggingface_hub copies files where it cannot make symlinks, and falls
  // back to absolute links where relative ones fail.
  WriteFile(root_ / "snapshots" / kCommit / config_.path, config_.content);
  WriteFile(root_ / "blobs" / weights_.digest().Hex(), weights_.content);
  Symlink(fs::absolute(root_ / "blobs" / weights_.digest().Hex()),
          root_ / "snapshots" / kCommit / weights_.path);
  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
  EXPECT_TRUE(Indexed(kCommit, config_.path));
  EXPECT_TRUE(Indexed(kCommit, weights_.path));
  EXPECT_TRUE(Stored(config_.digest()));
  EXPECT_TRUE(Stored(weights_.digest()));
}

TEST_F(HfCacheImportTest, SnapshotLinksThatLeaveTheRepoFolderAreSkipped) {
  WriteValidRepo();
  WriteFile(outside_ / secret_.digest().Hex(), secret_.content);
  const fs::path snapshot = root_ / "snapshots" / kCommit;
  // Relative, out of the cache.
  Symlink("../../../../outside/" + secret_.digest().Hex(), snapshot / "relative.txt");
  // Absolute, out of the cache.
  Symlink(outside_ / secret_.digest().Hex(), snapshot / "absolute.txt");
  // Into another repo's blobs: inside the cache, outside this repo.
  WriteFile(hf_ / "other" / "blobs" / secret_.digest().Hex(), secret_.content);
  Symlink("../../../other/blobs/" + secret_.digest().Hex(), snapshot / "neighbour.txt");
  // Into blobs/, where the blob is itself a link out.
  Symlink(outside_ / secret_.digest().Hex(), root_ / "blobs" / secret_.digest().Hex());
  Symlink("../../blobs/" + secret_.digest().Hex(), snapshot / "relayed.txt");
  // A directory outside: not descended into.
  WriteFile(outside_ / "dir" / "secret.txt", secret_.content);
  Symlink(outside_ / "dir", snapshot / "linked-dir");

  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  for (const char* path : {"relative.txt", "absolute.txt", "neighbour.txt", "relayed.txt"}) {
    ExpectSkipped(*report, kCommit, path, secret_.digest());
  }
  EXPECT_FALSE(Indexed(kCommit, "linked-dir/secret.txt"));
  // The good files of the same snapshot are imported.
  EXPECT_TRUE(Indexed(kCommit, config_.path));
  EXPECT_TRUE(Indexed(kCommit, weights_.path));
  ExpectStoreHoldsOnlyIndexedBlobs();
}

// A snapshot (or the whole folder, or blobs/) that is a symlink to a
// directory elsewhere: its regular files would be hashed, stored and
// indexed as the repo's files, and served to whoever may read the repo.
TEST_F(HfCacheImportTest, DirectoriesThatAreSymlinksOutOfTheFolderAreSkipped) {
  WriteValidRepo();
  WriteFile(outside_ / "snapshot" / secret_.path, secret_.content);
  Symlink(outside_ / "snapshot", root_ / "snapshots" / kOtherCommit);
  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  EXPECT_FALSE(Indexed(kOtherCommit, secret_.path));
  EXPECT_FALSE(Stored(secret_.digest()));
  EXPECT_FALSE(report->problems.empty());
  EXPECT_TRUE(Indexed(kCommit, config_.path));  // the real snapshot is fine
  ExpectStoreHoldsOnlyIndexedBlobs();
}

TEST_F(HfCacheImportTest, ARepoFolderOrItsDirectoriesAsSymlinksAreSkipped) {
  // A complete repo folder elsewhere, reached through links from the cache.
  const fs::path elsewhere = outside_ / "models--org--model";
  for (const File& f : {config_, weights_}) {
    WriteFile(elsewhere / "blobs" / f.digest().Hex(), f.content);
  }
  std::map<std::string, std::function<void()>> layouts = {
      {"folder", [&] {
         for (const File& f : {config_, weights_}) {
           std::string target;
           for (long i = 0; i < 2 + std::count(f.path.begin(), f.path.end(), '/'); ++i) {
             target += "../";
           }
           fs::remove(elsewhere / "snapshots" / kCommit / f.path);
           Symlink(target + "blobs/" + f.digest().Hex(), elsewhere / "snapshots" / kCommit / f.path);
         }
         Symlink(elsewhere, root_);
       }},
      {"blobs", [&] {
         for (const File& f : {config_, weights_}) Link(kCommit, f.path, f);
         Symlink(elsewhere / "blobs", root_ / "blobs");
       }},
      {"snapshots", [&] {
         fs::remove_all(elsewhere / "snapshots");
         WriteFile(elsewhere / "snapshots" / kCommit / secret_.path, secret_.content);
         fs::create_directories(root_);
         Symlink(elsewhere / "snapshots", root_ / "snapshots");
       }},
  };
  for (const auto& [name, build] : layouts) {
    SCOPED_TRACE(name);
    fs::remove_all(hf_);
    fs::create_directories(hf_);
    build();
    auto report = Import();
    ASSERT_TRUE(report) << report.error();
    EXPECT_EQ(report->repos, 0u);
    EXPECT_EQ(report->files, 0u);
    ASSERT_EQ(report->problems.size(), 1u);
    EXPECT_NE(report->problems[0].find("symlink"), std::string::npos) << report->problems[0];
    for (const File& f : {config_, weights_, secret_}) {
      EXPECT_FALSE(Indexed(kCommit, f.path)) << f.path;
      EXPECT_FALSE(Stored(f.digest())) << f.path;
    }
  }
  ExpectStoreHoldsOnlyIndexedBlobs();
}

TEST_F(HfCacheImportTest, BlobsThatDoNotHashToTheirNamesAreSkipped) {
  WriteValidRepo();
  // A blob whose bytes were changed.
  std::string damaged = weights_.content;
  damaged[1000] ^= 1;
  WriteFile(root_ / "blobs" / weights_.digest().Hex(), damaged);
  // A blob named by no digest at all.
  WriteFile(root_ / "blobs" / "not-a-digest", secret_.content);
  Symlink("../../blobs/not-a-digest", root_ / "snapshots" / kCommit / "unnamed.txt");
  // A copied file the tree listing claims is LFS content it is not.
  WriteFile(root_ / "snapshots" / kCommit / "claimed.bin", secret_.content);
  WriteFile(root_ / "trees" / (kCommit + ".json"),
            R"({"format_version": 1, "files": {"claimed.bin": {"size": 29, "lfs_sha256": ")" +
                weights_.digest().Hex() + R"("}}})");

  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  ExpectSkipped(*report, kCommit, weights_.path, weights_.digest());
  EXPECT_FALSE(Indexed(kCommit, "unnamed.txt"));
  EXPECT_FALSE(Stored(secret_.digest()));
  EXPECT_FALSE(Indexed(kCommit, "claimed.bin"));
  EXPECT_EQ(report->problems.size(), 3u);
  EXPECT_TRUE(Indexed(kCommit, config_.path));
  ExpectStoreHoldsOnlyIndexedBlobs();
}

// A FIFO would block a reader forever; dangling and looping links lead
// nowhere. Each is skipped, and the import finishes.
TEST_F(HfCacheImportTest, SpecialFilesAndBrokenLinksAreSkipped) {
  WriteValidRepo();
  const fs::path snapshot = root_ / "snapshots" / kCommit;
  ASSERT_EQ(::mkfifo((snapshot / "fifo.txt").c_str(), 0600), 0);
  const std::string fifo_blob(40, 'f');
  ASSERT_EQ(::mkfifo((root_ / "blobs" / fifo_blob).c_str(), 0600), 0);
  Symlink("../../blobs/" + fifo_blob, snapshot / "to-fifo.txt");
  Symlink("../../blobs/" + std::string(40, 'e'), snapshot / "dangling.txt");
  Symlink("loop.txt", snapshot / "loop.txt");
  fs::create_directories(root_ / "trees");
  ASSERT_EQ(::mkfifo((root_ / "trees" / (kCommit + ".json")).c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((root_ / "refs" / "fifo").c_str(), 0600), 0);
  // Links that loop, where a folder and a snapshot are expected.
  Symlink("models--org--loop", hf_ / "models--org--loop");
  Symlink(std::string(40, 'c'), root_ / "snapshots" / std::string(40, 'c'));

  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  for (const char* path : {"fifo.txt", "to-fifo.txt", "dangling.txt", "loop.txt"}) {
    EXPECT_FALSE(Indexed(kCommit, path)) << path;
    bool named = false;
    for (const auto& problem : report->problems) {
      if (problem.find(path) != std::string::npos) named = true;
    }
    EXPECT_TRUE(named) << path;
  }
  EXPECT_TRUE(Indexed(kCommit, config_.path));
  EXPECT_TRUE(Indexed(kCommit, weights_.path));
  EXPECT_EQ(report->refs, 1u);
  ExpectStoreHoldsOnlyIndexedBlobs();
}

TEST_F(HfCacheImportTest, FoldersAndRefsThatAreNotARepoAreIgnored) {
  WriteValidRepo();
  // Ref files that do not name an imported commit.
  WriteFile(root_ / "refs" / "stale", kOtherCommit);
  WriteFile(root_ / "refs" / "garbage", "../../../etc/passwd");
  Symlink(outside_ / "ref", root_ / "refs" / "linked");
  WriteFile(outside_ / "ref", kCommit);
  // Snapshot folders that are not commits.
  for (const char* name : {"main", "..x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}) {
    WriteFile(root_ / "snapshots" / name / "x.txt", "x");
  }
  // Folders that are not repos.
  for (const char* name :
       {"not-a-repo", "models--", "models--..--x", "kernels--org--x", "models--a--b--c"}) {
    WriteFile(hf_ / name / "snapshots" / kCommit / "x.txt", "x");
  }
  WriteFile(hf_ / "models--org--file", "a file, not a folder");

  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  EXPECT_EQ(report->repos, 1u);
  EXPECT_EQ(report->commits, 1u);
  EXPECT_EQ(report->files, 2u);
  EXPECT_EQ(report->refs, 1u);
  EXPECT_EQ(report->problems.size(), 5u);  // one per folder that is not a repo
  auto summaries = Summarize(store_->index());
  ASSERT_TRUE(summaries);
  ASSERT_EQ(summaries->size(), 1u);
  EXPECT_EQ((*summaries)[0].repo, kModel);
  EXPECT_EQ((*summaries)[0].refs,
            (std::vector<std::pair<std::string, std::string>>{{"main", kCommit}}));
  ExpectStoreHoldsOnlyIndexedBlobs();
}

TEST_F(HfCacheImportTest, AnExportedCacheImportsIntoAnotherStore) {
  WriteValidRepo();
  ASSERT_TRUE(Import());
  const fs::path out = dir_ / "exported";
  auto exported =
      ExportHfCache(store_->index(), store_->root(), {{.repo = kModel, .revision = ""}}, out);
  ASSERT_TRUE(exported) << exported.error();
  EXPECT_EQ(exported->files, 2u);
  Options options;
  options.cache_dir = (dir_ / "other-store").string();
  options.min_free_percent = 0;
  auto other = BlobStore::Open(options);
  ASSERT_TRUE(other);
  auto report = ImportHfCache(**other, out, false);
  ASSERT_TRUE(report) << report.error();
  EXPECT_TRUE(report->problems.empty()) << report->problems.front();
  for (const char* path : {"config.json", "sub/model.safetensors", "absent.txt"}) {
    EXPECT_EQ((*other)->index().GetFile(kModel, kCommit, path).value(),
              store_->index().GetFile(kModel, kCommit, path).value())
        << path;
  }
}

TEST_F(HfCacheImportTest, AMissingDirectoryIsAnError) {
  auto report = ImportHfCache(*store_, dir_ / "nowhere", false);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().find("not a directory"), std::string::npos);
}

}  // namespace
}  // namespace hubcache::store
