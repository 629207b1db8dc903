#include "store/bundle.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
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
using Json = nlohmann::json;

const std::string kCommit(40, 'a');
const std::string kOtherCommit(40, 'b');
const RepoId kModel{RepoType::kModel, "org/model"};
const RepoId kData{RepoType::kDataset, "org/data"};

using File = hubcache::testing::RepoFile;

// Import into a fresh store, from bundles written by hand (the format of
// store/bundle.h), valid and then broken in one way each.
class BundleImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenEmptyStore();
    fs::create_directories(bundle_);
  }
  // A store that holds nothing yet, so that every blob is read from the
  // bundle (a blob already stored is not read again).
  void OpenEmptyStore() {
    store_.reset();
    fs::remove_all(dir_ / "store");
    Options options;
    options.cache_dir = (dir_ / "store").string();
    options.min_free_percent = 0;
    auto store = BlobStore::Open(options);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
  }
  void TearDown() override { store_.reset(); }

  // The manifest of a bundle with org/model at kCommit (a regular file, an
  // LFS file, a negative entry, ref main, a document) and dataset org/data.
  Json Manifest() const {
    Json files = Json::array();
    for (const File& f : model_files_) {
      files.push_back({{"path", f.path},
                       {"exists", true},
                       {"lfs", f.lfs},
                       {"digest", f.digest().Hex()},
                       {"size", f.content.size()}});
    }
    files.push_back({{"path", "absent.txt"}, {"exists", false}});
    Json model = {{"type", "model"},
                  {"name", "org/model"},
                  {"visibility", "public"},
                  {"checked_at", core::UnixSeconds() - 100},
                  {"refs", {{"main", kCommit}}},
                  {"commits", Json::array({{{"commit", kCommit}, {"files", files}}})},
                  {"docs", Json::array({{{"revision", kCommit},
                                         {"request", "info"},
                                         {"headers", Json::array({{"Content-Type", "application/json"}})},
                                         {"stored_at", 1},
                                         {"body", R"({"sha":"aaa"})"}}})}};
    Json data = {{"type", "dataset"},
                 {"name", "org/data"},
                 {"visibility", "restricted"},
                 {"refs", Json::object()},
                 {"commits",
                  Json::array({{{"commit", kOtherCommit},
                                {"files", Json::array({{{"path", data_file_.path},
                                                        {"digest", data_file_.digest().Hex()},
                                                        {"size", data_file_.content.size()}}})}}})}};
    Json blobs = Json::array();
    for (const File& f : AllFiles()) {
      blobs.push_back({{"digest", f.digest().Hex()}, {"size", f.content.size()}});
    }
    return {{"format", "hubcache-bundle"},
            {"format_version", 1},
            {"created_at", core::UnixSeconds()},
            {"repos", Json::array({model, data})},
            {"blobs", blobs}};
  }
  std::vector<File> AllFiles() const {
    std::vector<File> all = model_files_;
    all.push_back(data_file_);
    return all;
  }
  fs::path BlobFile(const File& f) const {
    return bundle_ / "blobs" / std::string(f.digest().KindName()) / f.digest().Hex();
  }
  void WriteBlobs() const {
    for (const File& f : AllFiles()) WriteFile(BlobFile(f), f.content);
  }
  void WriteManifest(const Json& manifest) const {
    WriteFile(bundle_ / "manifest.json", manifest.dump());
  }
  void WriteBundle(const Json& manifest) const {
    WriteBlobs();
    WriteManifest(manifest);
  }

  tl::expected<ImportReport, std::string> Import(bool mark_public = false) {
    return ImportBundle(*store_, bundle_, mark_public);
  }

  // The index and the blobs hold nothing at all.
  void ExpectNothingImported() {
    auto summaries = Summarize(store_->index());
    ASSERT_TRUE(summaries);
    EXPECT_TRUE(summaries->empty());
    EXPECT_EQ(store_->index().BlobCount().value(), 0u);
    EXPECT_FALSE(store_->index().GetAccess(kModel).value().has_value());
    EXPECT_FALSE(store_->index().GetAccess(kData).value().has_value());
    ExpectStoreHoldsOnlyIndexedBlobs();
  }
  // No file in blobs/ or staging/ that the index does not list.
  void ExpectStoreHoldsOnlyIndexedBlobs() {
    for (const auto& e : fs::recursive_directory_iterator(store_->root() / "blobs")) {
      if (!e.is_regular_file()) continue;
      auto digest = Digest::ParseHex(e.path().filename().string());
      ASSERT_TRUE(digest) << e.path();
      EXPECT_TRUE(store_->index().GetBlob(*digest).value().has_value()) << e.path();
    }
    for (const auto& e : fs::recursive_directory_iterator(store_->root() / "staging")) {
      ADD_FAILURE() << "left in staging: " << e.path();
    }
  }
  // Imports a manifest changed by `edit`, expecting the whole import to be
  // refused with a message containing `expected`.
  void ExpectRefused(const std::function<void(Json&)>& edit, const std::string& expected) {
    Json manifest = Manifest();
    edit(manifest);
    WriteBundle(manifest);
    const auto before = Listing(dir_.path());
    auto imported = Import();
    ASSERT_FALSE(imported) << manifest.dump().substr(0, 400);
    EXPECT_NE(imported.error().find(expected), std::string::npos) << imported.error();
    ExpectNothingImported();
    EXPECT_EQ(Listing(dir_.path()), before);  // nothing written anywhere
  }

  testing::TempDir dir_{"hubcache-bundle-test"};
  const fs::path bundle_ = dir_ / "bundle";
  std::unique_ptr<BlobStore> store_;
  const std::vector<File> model_files_ = {
      {"config.json", R"({"model_type": "llama"})", false},
      {"sub/dir/model.safetensors", testing::Content(100'000, 1), true},
  };
  const File data_file_{"data/part-0.txt", "a,b\n1,2\n", false};
};

TEST_F(BundleImportTest, AValidBundleIsImportedCompletely) {
  WriteBundle(Manifest());
  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  EXPECT_TRUE(report->problems.empty());
  EXPECT_EQ(report->blobs_added, 3u);
  ASSERT_EQ(report->repos.size(), 2u);
  for (const auto& r : report->repos) EXPECT_TRUE(r.imported) << r.label << ": " << r.problem;

  Index& index = store_->index();
  for (const File& f : model_files_) {
    auto record = index.GetFile(kModel, kCommit, f.path);
    ASSERT_TRUE(record && *record) << f.path;
    EXPECT_EQ(**record, (FileRecord{.exists = true, .lfs = f.lfs, .digest = f.digest(),
                                    .size = f.content.size()}));
    auto blob = store_->Lookup(f.digest());
    ASSERT_TRUE(blob) << f.path;
    EXPECT_EQ(testing::ReadAll(blob->fd.get()), f.content);
  }
  auto negative = index.GetFile(kModel, kCommit, "absent.txt");
  ASSERT_TRUE(negative && *negative);
  EXPECT_FALSE((*negative)->exists);
  EXPECT_EQ(index.GetRef(kModel, "main").value()->commit, kCommit);
  EXPECT_EQ(index.GetDoc(kModel, kCommit, "info").value()->body, R"({"sha":"aaa"})");
  EXPECT_EQ(index.GetAccess(kModel).value()->visibility, Visibility::kPublic);
  // A restricted repo stays restricted unless the operator marks it public.
  EXPECT_EQ(index.GetAccess(kData).value()->visibility, Visibility::kRestricted);
  EXPECT_TRUE(index.GetFile(kData, kOtherCommit, data_file_.path).value().has_value());
  ExpectStoreHoldsOnlyIndexedBlobs();

  // Again: idempotent.
  auto again = Import();
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again->blobs_added, 0u);
  EXPECT_EQ(again->blobs_present, 3u);
}

TEST_F(BundleImportTest, AnExportedBundleImportsIntoAnotherStore) {
  WriteBundle(Manifest());
  ASSERT_TRUE(Import());
  const fs::path out = dir_ / "exported";
  auto exported = ExportBundle(store_->index(), store_->root(),
                               {{.repo = kModel, .revision = ""}, {.repo = kData, .revision = ""}},
                               out);
  ASSERT_TRUE(exported) << exported.error();
  Options options;
  options.cache_dir = (dir_ / "other-store").string();
  options.min_free_percent = 0;
  auto other = BlobStore::Open(options);
  ASSERT_TRUE(other);
  auto report = ImportBundle(**other, out, false);
  ASSERT_TRUE(report) << report.error();
  EXPECT_EQ(report->blobs_added, 3u);
  for (const File& f : AllFiles()) {
    const RepoId& repo = f.path == data_file_.path ? kData : kModel;
    const std::string& commit = f.path == data_file_.path ? kOtherCommit : kCommit;
    EXPECT_EQ((*other)->index().GetFile(repo, commit, f.path).value(),
              store_->index().GetFile(repo, commit, f.path).value())
        << f.path;
  }
}

TEST_F(BundleImportTest, AMissingOrUnparsableManifestIsRefused) {
  WriteBlobs();
  auto none = Import();
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("cannot be read"), std::string::npos) << none.error();

  const char kTrailingNul[] = "{\"format\":\"hubcache-bundle\",\"format_version\":1}\0x";
  for (const std::string& text : std::vector<std::string>{
           "", "{", "{\"format\": \"hubcache-bundle\", ", "[1, 2]", "\"hubcache-bundle\"", "42",
        "null", std::string(kTrailingNul, sizeof kTrailingNul - 1), std::string(100'000, '[')}) {
    SCOPED_TRACE(text.substr(0, 60));
    WriteFile(bundle_ / "manifest.json", text);
    auto imported = Import();
    ASSERT_FALSE(imported);
    EXPECT_FALSE(imported.error().empty());
    ExpectNothingImported();
  }
}

TEST_F(BundleImportTest, AnotherFormatOrVersionIsRefused) {
  ExpectRefused([](Json& m) { m["format"] = "hubcache-bundle-x"; }, "not a hubcache bundle");
  ExpectRefused([](Json& m) { m.erase("format"); }, "not a hubcache bundle");
  ExpectRefused([](Json& m) { m["format_version"] = 2; }, "format_version");
  ExpectRefused([](Json& m) { m["format_version"] = 0; }, "format_version");
  ExpectRefused([](Json& m) { m.erase("format_version"); }, "format_version");
  ExpectRefused([](Json& m) { m.erase("repos"); }, "no repos");
  ExpectRefused([](Json& m) { m["repos"] = Json::object(); }, "no repos");
}

// Fields of the wrong JSON type are refused as malformed; they must not throw
// out of the reader (nlohmann's value() throws on a type mismatch).
TEST_F(BundleImportTest, FieldsOfTheWrongTypeAreRefusedCleanly) {
  ExpectRefused([](Json& m) { m["format"] = 1; }, "not a hubcache bundle");
  ExpectRefused([](Json& m) { m["format_version"] = "1"; }, "format_version");
  ExpectRefused([](Json& m) { m["format_version"] = true; }, "format_version");
  ExpectRefused([](Json& m) { m["format_version"] = 1.5; }, "format_version");
  ExpectRefused([](Json& m) { m["repos"][0] = "org/model"; }, "not an object");
  ExpectRefused([](Json& m) { m["repos"][0]["type"] = 1; }, "type");
  ExpectRefused([](Json& m) { m["repos"][0]["name"] = Json::array({"org", "model"}); }, "name");
  ExpectRefused([](Json& m) { m["repos"][0]["visibility"] = true; }, "visibility");
  ExpectRefused([](Json& m) { m["repos"][0]["checked_at"] = "yesterday"; }, "checked_at");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"] = Json::object(); }, "commits");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["commit"] = 7; }, "commit");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"] = "all"; }, "commit");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["path"] = 3; }, "path");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["exists"] = "yes"; },
                "exists");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["lfs"] = 1; }, "lfs");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["digest"] = 5; }, "digest");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["size"] = "23"; }, "size");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["size"] = -1; }, "size");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["size"] = 23.0; }, "size");
  ExpectRefused([](Json& m) { m["repos"][0]["refs"] = Json::array(); }, "refs");
  ExpectRefused([](Json& m) { m["repos"][0]["refs"]["main"] = 1; }, "ref");
  ExpectRefused([](Json& m) { m["repos"][0]["docs"] = Json::object(); }, "docs");
  ExpectRefused([](Json& m) { m["repos"][0]["docs"][0]["body"] = Json::object(); }, "document");
  ExpectRefused([](Json& m) { m["repos"][0]["docs"][0]["stored_at"] = "now"; }, "stored_at");
  ExpectRefused([](Json& m) { m["repos"][0]["docs"][0]["headers"] = "Content-Type"; }, "headers");
}

TEST_F(BundleImportTest, MissingFieldsAreRefused) {
  ExpectRefused([](Json& m) { m["repos"][0].erase("type"); }, "type");
  ExpectRefused([](Json& m) { m["repos"][0].erase("name"); }, "name");
  ExpectRefused([](Json& m) { m["repos"][0].erase("commits"); }, "commits");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0].erase("commit"); }, "commit");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0].erase("files"); }, "commit");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0].erase("path"); }, "path");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0].erase("digest"); },
                "digest");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0].erase("size"); }, "size");
  ExpectRefused([](Json& m) { m["repos"][0]["docs"][0].erase("request"); }, "document");
}

TEST_F(BundleImportTest, BadNamesAndValuesAreRefused) {
  ExpectRefused([](Json& m) { m["repos"][0]["type"] = "kernel"; }, "type");
  ExpectRefused([](Json& m) { m["repos"][0]["name"] = "../../etc"; }, "name");
  ExpectRefused([](Json& m) { m["repos"][0]["name"] = "org/model@main"; }, "name");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["commit"] = "main"; }, "commit");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["commit"] = std::string(40, 'A'); },
                "commit");
  ExpectRefused(
      [](Json& m) { m["repos"][0]["commits"][0]["files"][0]["digest"] = std::string(64, 'g'); },
      "digest");
  ExpectRefused(
      [](Json& m) { m["repos"][0]["commits"][0]["files"][0]["digest"] = std::string(50, 'a'); },
      "digest");
  // LFS files are named by sha256, regular files by git blob id.
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["lfs"] = true; }, "lfs");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][1]["lfs"] = false; }, "lfs");
  ExpectRefused([](Json& m) { m["repos"][0]["refs"]["dev"] = std::string(40, 'c'); }, "ref");
  ExpectRefused([](Json& m) { m["repos"][0]["docs"][0]["revision"] = "v9"; }, "revision");
  // One blob under two sizes.
  ExpectRefused(
      [this](Json& m) {
        const File& f = model_files_[0];
        m["repos"][1]["commits"][0]["files"].push_back(
            {{"path", "copy.json"}, {"digest", f.digest().Hex()}, {"size", f.content.size() + 1}});
      },
      "two sizes");
}

// A stored document's headers are sent to clients as they are: a bundle
// may carry only those hubcache stores itself, and no value that could end
// a header line (found by tests/fuzz/bundle_manifest_fuzz.cc's checks).
TEST_F(BundleImportTest, DocumentHeadersBeyondWhatHubcacheStoresAreRefused) {
  const std::vector<Json> headers = {
      Json::array({"Set-Cookie", "session=x"}),
      Json::array({"Content-Length", "0"}),
      Json::array({"Transfer-Encoding", "chunked"}),
      Json::array({"content-type", "application/json"}),  // not as hubcache spells it
      Json::array({"Content-Type", "application/json\r\nSet-Cookie: session=x"}),
      Json::array({"Link", "<https://huggingface.co/x>\nX-Injected: 1"}),
      Json::array({"ETag", std::string("\"abc\0\"", 6)}),
  };
  for (const Json& header : headers) {
    SCOPED_TRACE(header.dump());
    ExpectRefused([&](Json& m) { m["repos"][0]["docs"][0]["headers"].push_back(header); },
                  "header");
  }
  // What hubcache writes passes.
  Json manifest = Manifest();
  manifest["repos"][0]["docs"][0]["headers"] =
      Json::array({Json::array({"Content-Type", "application/json; charset=utf-8"}),
                   Json::array({"X-Total-Count", "3"}), Json::array({"ETag", "W/\"1a\tb\""})});
  WriteBundle(manifest);
  ASSERT_TRUE(Import());
}

TEST_F(BundleImportTest, PathTraversalInFilePathsAndRefsIsRefused) {
  for (const std::string& path : std::vector<std::string>{
           "../config.json", "../../../../../../tmp/evil", "/etc/passwd", "sub/../../x", "./config.json",
        "sub/./x", "sub//x", "sub/", "", "..", ".", std::string("config.json\0.txt", 16),
        "sub\\..\\..\\x"}) {
    SCOPED_TRACE(path);
    ExpectRefused([&](Json& m) { m["repos"][0]["commits"][0]["files"][0]["path"] = path; },
                  "safe path");
    ExpectRefused(
        [&](Json& m) {
          m["repos"][0]["commits"][0]["files"].push_back({{"path", path}, {"exists", false}});
        },
        "safe path");
  }
  for (const std::string& rev :
       std::vector<std::string>{"../../x", "/main", "a/../b", std::string("ma\0in", 5)}) {
    SCOPED_TRACE(rev);
    ExpectRefused([&](Json& m) { m["repos"][0]["refs"][rev] = kCommit; }, "ref");
  }
}

// Sizes far beyond anything real must be refused without overflowing
// anything or taking the store's space.
TEST_F(BundleImportTest, HugeNumbersAreRefused) {
  // 2^32 + 1 is 1 in an int.
  ExpectRefused([](Json& m) { m["format_version"] = 4294967297ULL; }, "format_version");
  ExpectRefused([](Json& m) { m["repos"][0]["commits"][0]["files"][0]["size"] = 1e30; }, "size");

  Json manifest = Manifest();
  manifest["repos"][0]["commits"][0]["files"][0]["size"] =
      std::numeric_limits<std::uint64_t>::max();
  WriteBundle(manifest);
  auto report = Import();
  ASSERT_TRUE(report) << report.error();
  ASSERT_EQ(report->repos.size(), 2u);
  EXPECT_FALSE(report->repos[0].imported);
  EXPECT_FALSE(report->problems.empty());
  EXPECT_FALSE(store_->index().GetFile(kModel, kCommit, "config.json").value().has_value());
  EXPECT_EQ(store_->reserved_bytes(), 0u);
  ExpectStoreHoldsOnlyIndexedBlobs();
}

// checked_at says when the Hub last confirmed the repo public. One from the
// future (or far past) must not make it public for longer than
// access.public_ttl from the import, nor overflow `now - checked_at`.
TEST_F(BundleImportTest, ACheckedAtOutsideThePastIsClampedToTheImport) {
  for (const std::int64_t checked_at :
       {std::numeric_limits<std::int64_t>::max(), core::UnixSeconds() + 86400 * 365,
        std::numeric_limits<std::int64_t>::min(), std::int64_t{-1}}) {
    SCOPED_TRACE(checked_at);
    Json manifest = Manifest();
    manifest["repos"][0]["checked_at"] = checked_at;
    WriteBundle(manifest);
    const std::int64_t before = core::UnixSeconds();
    auto report = Import();
    ASSERT_TRUE(report) << report.error();
    const std::int64_t after = core::UnixSeconds();
    auto fact = store_->index().GetAccess(kModel);
    ASSERT_TRUE(fact && *fact);
    EXPECT_EQ((*fact)->visibility, Visibility::kPublic);
    EXPECT_GE((*fact)->checked_at, 0);
    EXPECT_LE((*fact)->checked_at, after);
    if (checked_at > after) {
      EXPECT_GE((*fact)->checked_at, before);
    }
  }
  // A plausible past time is kept: the fact expires as it would have.
  Json manifest = Manifest();
  manifest["repos"][0]["checked_at"] = 1'700'000'000;
  WriteBundle(manifest);
  ASSERT_TRUE(Import());
  EXPECT_EQ(store_->index().GetAccess(kModel).value()->checked_at, 1'700'000'000);
}

// A blob whose file is not the manifest's (size, content, missing): its
// repos are not imported, and nothing of it enters the store. Other repos
// of the bundle are unaffected.
TEST_F(BundleImportTest, ABlobThatDoesNotMatchTheManifestKeepsItsRepoOut) {
  const File& lfs = model_files_[1];
  const std::map<std::string, std::function<void()>> damage = {
      {"size", [&] { WriteFile(BlobFile(lfs), lfs.content + "x"); }},
      {"shorter", [&] { WriteFile(BlobFile(lfs), lfs.content.substr(1)); }},
      {"content", [&] {
         std::string bytes = lfs.content;
         bytes[500] ^= 1;
         WriteFile(BlobFile(lfs), bytes);
       }},
      {"missing", [&] { fs::remove(BlobFile(lfs)); }},
      {"directory", [&] {
         fs::remove(BlobFile(lfs));
         fs::create_directories(BlobFile(lfs));
       }},
  };
  for (const auto& [name, apply] : damage) {
    SCOPED_TRACE(name);
    OpenEmptyStore();
    fs::remove_all(bundle_ / "blobs");
    WriteBundle(Manifest());
    apply();
    auto report = Import();
    ASSERT_TRUE(report) << report.error();
    ASSERT_EQ(report->repos.size(), 2u);
    EXPECT_FALSE(report->repos[0].imported);
    EXPECT_NE(report->repos[0].problem.find(lfs.path), std::string::npos)
        << report->repos[0].problem;
    EXPECT_TRUE(report->repos[1].imported) << report->repos[1].problem;
    ASSERT_EQ(report->problems.size(), 1u);
    EXPECT_NE(report->problems[0].find(lfs.digest().Hex()), std::string::npos)
        << report->problems[0];
    // Nothing of org/model is indexed, not even its good file or its ref.
    EXPECT_FALSE(store_->index().GetBlob(lfs.digest()).value().has_value());
    EXPECT_FALSE(store_->index().GetFile(kModel, kCommit, "config.json").value().has_value());
    EXPECT_FALSE(store_->index().GetRef(kModel, "main").value().has_value());
    EXPECT_FALSE(store_->index().GetAccess(kModel).value().has_value());
    ExpectStoreHoldsOnlyIndexedBlobs();
  }
}

// Blob files are read from inside the bundle only: a symlink (to a file that
// even has the right content) or a FIFO (which would block the reader) is
// not a blob file.
TEST_F(BundleImportTest, ABlobFileThatIsASymlinkOrFifoIsRefused) {
  const File& config = model_files_[0];
  const fs::path outside = dir_ / "outside" / "config.json";
  WriteFile(outside, config.content);
  const std::map<std::string, std::function<void()>> replace = {
      {"absolute symlink", [&] { fs::create_symlink(outside, BlobFile(config)); }},
      {"relative symlink",
       [&] { fs::create_symlink("../../../outside/config.json", BlobFile(config)); }},
      {"fifo", [&] { ASSERT_EQ(::mkfifo(BlobFile(config).c_str(), 0600), 0); }},
  };
  for (const auto& [name, apply] : replace) {
    SCOPED_TRACE(name);
    OpenEmptyStore();
    fs::remove_all(bundle_ / "blobs");
    WriteBundle(Manifest());
    fs::remove(BlobFile(config));
    apply();
    auto report = Import();
    ASSERT_TRUE(report) << report.error();
    EXPECT_FALSE(report->repos[0].imported);
    EXPECT_EQ(report->problems.size(), 1u);
    for (const auto& problem : report->problems) {
      EXPECT_NE(problem.find("regular file"), std::string::npos) << problem;
    }
    EXPECT_FALSE(store_->index().GetBlob(config.digest()).value().has_value());
    EXPECT_FALSE(store_->index().GetFile(kModel, kCommit, "config.json").value().has_value());
    ExpectStoreHoldsOnlyIndexedBlobs();
  }
  EXPECT_EQ(ReadFile(outside), config.content);
}

TEST_F(BundleImportTest, MarkPublicServesRestrictedReposToEveryone) {
  WriteBundle(Manifest());
  ASSERT_TRUE(Import(/*mark_public=*/true));
  auto fact = store_->index().GetAccess(kData);
  ASSERT_TRUE(fact && *fact);
  EXPECT_EQ((*fact)->visibility, Visibility::kPublic);
  EXPECT_NEAR((*fact)->checked_at, core::UnixSeconds(), 60);
}

}  // namespace
}  // namespace hubcache::store
