// The fake Hub against HUB_PROTOCOL.md §1-§3: resolves, resolve-cache, the
// CDN, the JSON API, pagination, errors, revisions and file names.
#include "tests/fakehub/fake_hub.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <regex>
#include <set>
#include <string>

#include "store/digest.h"
#include "tests/fakehub/test_util.h"

namespace hubcache::fakehub {
namespace {

using hubcache::testing::HttpConnection;
using hubcache::testing::HttpResponse;
using testing::CdnLocation;
using testing::Fetch;
using testing::GetUrl;
using testing::HubGet;
using testing::HubHead;
using testing::SplitUrl;
using Json = nlohmann::json;

std::string Sha256(const std::string& data) {
  return store::HashBytes(store::DigestKind::kSha256, data).Hex();
}
std::string GitSha1(const std::string& data) {
  return store::HashBytes(store::DigestKind::kGitSha1, data).Hex();
}
std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

class FakeHubTest : public ::testing::Test {
 protected:
  void SetUp() override { hub_ = FakeHub::Start(Options{}); }

  std::string Main() const { return hub_->Commit("model", "org/model", "main"); }
  std::string Host() const { return "127.0.0.1:" + std::to_string(hub_->port()); }

  std::unique_ptr<FakeHub> hub_;
};

// --- Resolve (§2) -------------------------------------------------------

TEST_F(FakeHubTest, RegularFileResolvesTo307RelativeResolveCache) {
  for (const std::string method : {"HEAD", "GET"}) {
    const HttpResponse r = Fetch(hub_->port(), method, "/org/model/resolve/main/config.json");
    EXPECT_EQ(r.status, 307u) << method;
    const std::string sha1 = hub_->Etag("model", "org/model", "main", "config.json");
    EXPECT_EQ(r.Header("location"),
              "/api/resolve-cache/models/org/model/" + Main() +
                  "/config.json?%2Forg%2Fmodel%2Fresolve%2Fmain%2Fconfig.json=&etag=%22" + sha1 +
                  "%22");
    EXPECT_EQ(r.Header("x-repo-commit"), Main());
    EXPECT_EQ(r.Header("etag"), Quoted(sha1));
    EXPECT_EQ(r.Header("accept-ranges"), "bytes");
    EXPECT_EQ(r.Header("vary"), "Origin, Accept");
    EXPECT_EQ(r.Header("x-powered-by"), "huggingface-moon");
    EXPECT_EQ(r.Header("x-linked-size"), "");
    EXPECT_EQ(r.Header("x-linked-etag"), "");
    EXPECT_EQ(r.Header("x-xet-hash"), "");
  }
}

TEST_F(FakeHubTest, ResolveCacheServesRegularFileWithAndWithoutQuery) {
  const std::string content = hub_->FileContent("model", "org/model", "main", "config.json");
  const std::string sha1 = hub_->Etag("model", "org/model", "main", "config.json");
  EXPECT_EQ(GitSha1(content), sha1);
  const std::string location =
      HubHead(*hub_, "/org/model/resolve/main/config.json").Header("location");
  const std::string path_only = location.substr(0, location.find('?'));
  for (const std::string& target : {location, path_only}) {
    const HttpResponse head = HubHead(*hub_, target);
    EXPECT_EQ(head.status, 200u);
    EXPECT_EQ(head.Header("content-length"), std::to_string(content.size()));
    EXPECT_EQ(head.Header("etag"), Quoted(sha1));
    EXPECT_EQ(head.Header("x-repo-commit"), Main());
    EXPECT_EQ(head.Header("accept-ranges"), "bytes");
    EXPECT_TRUE(head.body.empty());
    const HttpResponse get = HubGet(*hub_, target);
    EXPECT_EQ(get.status, 200u);
    EXPECT_EQ(get.body, content);
  }
  const HttpResponse partial = HubGet(*hub_, path_only, {{"Range", "bytes=10-19"}});
  EXPECT_EQ(partial.status, 206u);
  EXPECT_EQ(partial.Header("content-range"), "bytes 10-19/" + std::to_string(content.size()));
  EXPECT_EQ(partial.body, content.substr(10, 10));
  EXPECT_EQ(partial.Header("etag"), Quoted(sha1));
}

TEST_F(FakeHubTest, LfsFileResolvesTo302AbsoluteSignedCdnUrl) {
  for (const std::string method : {"HEAD", "GET"}) {
    const HttpResponse r = Fetch(hub_->port(), method, "/org/model/resolve/main/model.safetensors");
    EXPECT_EQ(r.status, 302u);
    const std::string sha256 = hub_->Etag("model", "org/model", "main", "model.safetensors");
    const std::string location = r.Header("location");
    EXPECT_TRUE(location.starts_with(hub_->cdn_url() + "/xet-bridge-us/")) << location;
    EXPECT_NE(location.find("/" + sha256 + "?"), std::string::npos) << location;
    for (const char* param : {"Expires=", "Policy=", "Signature=", "Key-Pair-Id="}) {
      EXPECT_NE(location.find(param), std::string::npos) << param;
    }
    EXPECT_EQ(r.Header("x-repo-commit"), Main());
    EXPECT_EQ(r.Header("x-linked-etag"), Quoted(sha256));
    EXPECT_EQ(r.Header("x-linked-size"), "5000000");
    EXPECT_FALSE(r.Header("etag").empty());
    EXPECT_EQ(r.Header("accept-ranges"), "bytes");
    // Xet hints only when enabled.
    EXPECT_EQ(r.Header("x-xet-hash"), "");
    EXPECT_EQ(r.Header("link"), "");
  }
}

TEST_F(FakeHubTest, CdnServesWholeFileAndExactRanges) {
  const std::string url = CdnLocation(*hub_, "/org/model/resolve/main/model.safetensors");
  const std::string content = hub_->FileContent("model", "org/model", "main", "model.safetensors");
  const std::string sha256 = hub_->Etag("model", "org/model", "main", "model.safetensors");
  const std::uint64_t n = content.size();
  ASSERT_EQ(n, 5000000u);
  EXPECT_EQ(Sha256(content), sha256);

  const HttpResponse whole = GetUrl(url);
  EXPECT_EQ(whole.status, 200u);
  EXPECT_EQ(whole.body.size(), n);
  EXPECT_EQ(Sha256(whole.body), sha256);
  EXPECT_EQ(whole.Header("etag"), Quoted(sha256));
  EXPECT_EQ(whole.Header("accept-ranges"), "bytes");
  EXPECT_EQ(whole.Header("cache-control"), "public, max-age=31536000");
  EXPECT_EQ(whole.Header("x-cache"), "Hit from cloudfront");
  EXPECT_EQ(whole.Header("content-disposition"),
            "inline; filename*=UTF-8''model.safetensors; filename=\"model.safetensors\";");

  const HttpResponse head = GetUrl(url, {}, "HEAD");
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.Header("content-length"), std::to_string(n));

  struct Case {
    std::string range;
    std::uint64_t first, last;
  };
  const Case cases[] = {
      {"bytes=0-0", 0, 0},
      {"bytes=10-19", 10, 19},
      {"bytes=-5", n - 5, n - 1},
      {"bytes=" + std::to_string(n - 5) + "-", n - 5, n - 1},
      {"bytes=100-" + std::to_string(n), 100, n - 1},  // end one past: clamped
      {"bytes=4999990-9999999999", 4999990, n - 1},
      {"bytes=-99999999", 0, n - 1},
  };
  for (const Case& c : cases) {
    // The CDN never needs Authorization; sending one changes nothing.
    const HttpResponse r = GetUrl(url, {{"Range", c.range}, {"Authorization", "Bearer hf_user"}});
    EXPECT_EQ(r.status, 206u) << c.range;
    EXPECT_EQ(r.Header("content-range"), "bytes " + std::to_string(c.first) + "-" +
                                             std::to_string(c.last) + "/" + std::to_string(n))
        << c.range;
    EXPECT_EQ(r.body, content.substr(c.first, c.last - c.first + 1)) << c.range;
    EXPECT_EQ(r.Header("etag"), Quoted(sha256));
  }
  for (const std::string& range : {"bytes=" + std::to_string(n) + "-",
                                   std::string("bytes=5000001-5000002"), std::string("bytes=-0")}) {
    const HttpResponse r = GetUrl(url, {{"Range", range}});
    EXPECT_EQ(r.status, 416u) << range;
    EXPECT_EQ(r.Header("content-range"), "bytes */" + std::to_string(n));
  }
}

TEST_F(FakeHubTest, CdnRejectsExpiredTamperedAndUnsignedUrls) {
  const std::string url = CdnLocation(*hub_, "/org/model/resolve/main/model.safetensors");
  EXPECT_EQ(GetUrl(url, {{"Range", "bytes=0-0"}}).status, 206u);

  std::string tampered = url;
  tampered.replace(tampered.find("Signature=") + 10, 1, "A");
  if (tampered == url) tampered.replace(tampered.find("Signature=") + 10, 1, "B");
  EXPECT_EQ(GetUrl(tampered).status, 403u);

  std::string later = std::regex_replace(url, std::regex("Expires=[0-9]+"), "Expires=9999999999");
  EXPECT_EQ(GetUrl(later).status, 403u);

  const std::string unsigned_url = url.substr(0, url.find('?'));
  const HttpResponse r = GetUrl(unsigned_url);
  EXPECT_EQ(r.status, 403u);
  EXPECT_NE(r.body.find("<Error>"), std::string::npos);

  hub_->SetSignedUrlTtl(std::chrono::seconds(0));
  const std::string expired = CdnLocation(*hub_, "/org/model/resolve/main/model.safetensors");
  const HttpResponse e = GetUrl(expired);
  EXPECT_EQ(e.status, 403u);
  EXPECT_NE(e.body.find("expired"), std::string::npos) << e.body;
  EXPECT_EQ(GetUrl(url, {{"Range", "bytes=0-0"}}).status, 206u);  // older URL still valid
}

TEST(FakeHubOptionsTest, SignedUrlTtlOptionExpiresUrls) {
  Options options;
  options.signed_url_ttl = std::chrono::seconds(0);
  auto hub = FakeHub::Start(options);
  EXPECT_EQ(GetUrl(CdnLocation(*hub, "/org/model/resolve/main/model.safetensors")).status, 403u);
}

TEST(FakeHubOptionsTest, XetHintsWhenEnabled) {
  Options options;
  options.xet = true;
  auto hub = FakeHub::Start(options);
  const std::string main = hub->Commit("model", "org/model", "main");
  const std::string host = "127.0.0.1:" + std::to_string(hub->port());
  const HttpResponse r =
      HubHead(*hub, "/org/model/resolve/main/model.safetensors", {{"Host", host}});
  EXPECT_EQ(r.status, 302u);
  const std::string xet = r.Header("x-xet-hash");
  EXPECT_TRUE(std::regex_match(xet, std::regex("[0-9a-f]{64}"))) << xet;
  EXPECT_EQ(r.Header("link"), "<http://" + host + "/api/models/org/model/xet-read-token/" + main +
                                  ">; rel=\"xet-auth\", <https://cas-server.xethub.hf.co/v1/"
                                  "reconstructions/" +
                                  xet + ">; rel=\"xet-reconstruction-info\"");
  // Regular files carry no Xet hints.
  EXPECT_EQ(HubHead(*hub, "/org/model/resolve/main/config.json").Header("x-xet-hash"), "");

  // xetHash in tree and paths-info JSON.
  const Json tree = Json::parse(HubGet(*hub, "/api/models/org/model/tree/main").body);
  bool found = false;
  for (const Json& e : tree) {
    if (e["path"] == "model.safetensors") {
      EXPECT_EQ(e["xetHash"], xet);
      found = true;
    } else {
      EXPECT_FALSE(e.contains("xetHash"));
    }
  }
  EXPECT_TRUE(found);
  const Json info = Json::parse(Fetch(hub->port(), "POST", "/api/models/org/model/paths-info/main",
                                      {{"Content-Type", "application/json"}},
                                      R"({"paths":["model.safetensors"],"expand":true})")
                                    .body);
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0]["xetHash"], xet);

  // The JS probe's Accept gets the Xet file info (§6.2).
  const HttpResponse probe =
      HubGet(*hub, "/org/model/resolve/main/model.safetensors",
             {{"Range", "bytes=0-0"}, {"Accept", "application/vnd.xet-fileinfo+json, */*"}});
  EXPECT_EQ(probe.status, 200u);
  EXPECT_NE(probe.Header("content-type").find("application/vnd.xet-fileinfo+json"),
            std::string::npos);
  EXPECT_EQ(probe.Header("x-linked-size"), "5000000");
  const Json fileinfo = Json::parse(probe.body);
  EXPECT_EQ(fileinfo["hash"], xet);
  EXPECT_EQ(fileinfo["size"], "5000000");
  EXPECT_EQ(fileinfo["etag"], hub->Etag("model", "org/model", "main", "model.safetensors"));

  const HttpResponse token = HubGet(*hub, "/api/models/org/model/xet-read-token/" + main);
  EXPECT_EQ(token.status, 200u);
  const Json t = Json::parse(token.body);
  EXPECT_TRUE(t["accessToken"].is_string());
  EXPECT_EQ(t["casUrl"], "https://cas-server.xethub.hf.co");
  EXPECT_TRUE(t["exp"].is_number_integer());
  EXPECT_EQ(token.Header("x-xet-access-token"), t["accessToken"]);
  EXPECT_EQ(token.Header("x-xet-cas-url"), "https://cas-server.xethub.hf.co");
  EXPECT_FALSE(token.Header("x-xet-token-expiration").empty());
}

TEST_F(FakeHubTest, NoXetHintsInJsonWhenDisabled) {
  const std::string body = HubGet(*hub_, "/api/models/org/model/tree/main?recursive=true").body;
  EXPECT_EQ(body.find("xetHash"), std::string::npos);
  const HttpResponse probe = HubGet(*hub_, "/org/model/resolve/main/model.safetensors",
                                    {{"Accept", "application/vnd.xet-fileinfo+json, */*"}});
  EXPECT_EQ(probe.status, 302u);
}

TEST_F(FakeHubTest, RawServesGitBlobsAndLfsPointers) {
  const HttpResponse r = HubGet(*hub_, "/org/model/raw/main/model.safetensors");
  EXPECT_EQ(r.status, 200u);
  const std::string sha256 = hub_->Etag("model", "org/model", "main", "model.safetensors");
  EXPECT_EQ(r.body, "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256 +
                        "\nsize 5000000\n");
  EXPECT_EQ(r.Header("etag"), Quoted(GitSha1(r.body)));
  const HttpResponse config = HubGet(*hub_, "/org/model/raw/main/config.json");
  EXPECT_EQ(config.body, hub_->FileContent("model", "org/model", "main", "config.json"));
}

TEST_F(FakeHubTest, DatasetsAndSpacesUseTheirPrefixes) {
  const HttpResponse d = HubHead(*hub_, "/datasets/org/data/resolve/main/README.md");
  EXPECT_EQ(d.status, 307u);
  EXPECT_TRUE(d.Header("location").starts_with("/api/resolve-cache/datasets/org/data/"));
  EXPECT_NE(d.Header("location").find("%2Fdatasets%2Forg%2Fdata%2Fresolve%2Fmain%2FREADME.md="),
            std::string::npos);
  EXPECT_EQ(HubGet(*hub_, d.Header("location")).body,
            hub_->FileContent("dataset", "org/data", "main", "README.md"));
  const HttpResponse s = HubHead(*hub_, "/spaces/org/space/resolve/main/app.py");
  EXPECT_EQ(s.status, 307u);
  EXPECT_TRUE(s.Header("location").starts_with("/api/resolve-cache/spaces/org/space/"));
  // Models have no prefix: a dataset id under the model path is not found.
  EXPECT_EQ(HubHead(*hub_, "/org/data/resolve/main/README.md").status, 401u);
  EXPECT_EQ(HubGet(*hub_, "/api/datasets/org/data").status, 200u);
  EXPECT_EQ(HubGet(*hub_, "/api/spaces/org/space").status, 200u);
}

// --- Revisions and file names (§1.3) -------------------------------------

TEST_F(FakeHubTest, RevisionsWithSlashesTagsAndCommits) {
  struct Case {
    std::string encoded, revision, file;
  };
  const Case cases[] = {
      {"refs%2Fpr%2F1", "refs/pr/1", "pr.txt"},
      {"feat%2Fx", "feat/x", "feature.txt"},
      {"v1.0", "v1.0", "config.json"},
      {"refs%2Ftags%2Fv1.0", "v1.0", "config.json"},
      {"refs%2Fheads%2Fmain", "main", "config.json"},
      {hub_->Commit("model", "org/model", "v1.0"), "v1.0", "config.json"},
  };
  for (const Case& c : cases) {
    const std::string commit = hub_->Commit("model", "org/model", c.revision);
    const HttpResponse r = HubHead(*hub_, "/org/model/resolve/" + c.encoded + "/" + c.file);
    EXPECT_EQ(r.status, 307u) << c.encoded;
    EXPECT_EQ(r.Header("x-repo-commit"), commit) << c.encoded;
    EXPECT_EQ(HubGet(*hub_, r.Header("location")).body,
              hub_->FileContent("model", "org/model", commit, c.file));
    const Json info =
        Json::parse(HubGet(*hub_, "/api/models/org/model/revision/" + c.encoded).body);
    EXPECT_EQ(info["sha"], commit) << c.encoded;
  }
  EXPECT_NE(hub_->Commit("model", "org/model", "refs/pr/1"), Main());
  EXPECT_NE(hub_->Commit("model", "org/model", "feat/x"), Main());
  // A revision is one segment: the unencoded branch is not split off a path.
  EXPECT_EQ(HubHead(*hub_, "/org/model/resolve/feat/x/feature.txt").status, 404u);
  EXPECT_EQ(HubHead(*hub_, "/org/model/resolve/feat/x/feature.txt").Header("x-error-code"),
            "RevisionNotFound");
  // The v1.0 commit is older: config.json differs from main's.
  EXPECT_NE(hub_->Etag("model", "org/model", "v1.0", "config.json"),
            hub_->Etag("model", "org/model", "main", "config.json"));
}

TEST_F(FakeHubTest, FileNamesWithSpacePlusAndNonAscii) {
  const std::string path = "dir/\xC3\xA9 x+y.txt";
  const std::string content = hub_->FileContent("model", "org/model", "main", path);
  ASSERT_FALSE(content.empty());
  // Python encodes everything; JS leaves '+' literal.
  for (const std::string encoded : {"dir/%C3%A9%20x%2By.txt", "dir/%C3%A9%20x+y.txt"}) {
    const HttpResponse r = HubHead(*hub_, "/org/model/resolve/main/" + encoded);
    EXPECT_EQ(r.status, 307u) << encoded;
    const std::string location = r.Header("location");
    EXPECT_TRUE(location.starts_with("/api/resolve-cache/models/org/model/" + Main() +
                                     "/dir/%C3%A9%20x%2By.txt?"))
        << location;
    EXPECT_EQ(HubGet(*hub_, location).body, content);
  }
  // '+' is never a space.
  const HttpResponse space = HubHead(*hub_, "/org/model/resolve/main/dir/%C3%A9%20x%20y.txt");
  EXPECT_EQ(space.status, 404u);
  EXPECT_EQ(space.Header("x-error-code"), "EntryNotFound");
}

// --- API (§1.4-§1.6) -----------------------------------------------------

TEST_F(FakeHubTest, RepoInfoShapes) {
  const Json info = Json::parse(HubGet(*hub_, "/api/models/org/model").body);
  EXPECT_EQ(info["id"], "org/model");
  EXPECT_EQ(info["sha"], Main());
  EXPECT_EQ(info["private"], false);
  EXPECT_EQ(info["gated"], false);
  EXPECT_TRUE(info["_id"].is_string());
  EXPECT_TRUE(info["lastModified"].is_string());
  std::set<std::string> names;
  for (const Json& s : info["siblings"]) {
    names.insert(s["rfilename"]);
    EXPECT_FALSE(s.contains("size"));
  }
  EXPECT_TRUE(names.contains("config.json"));
  EXPECT_TRUE(names.contains("sub/dir/notes.txt"));
  EXPECT_TRUE(names.contains("dir/\xC3\xA9 x+y.txt"));

  const Json blobs =
      Json::parse(HubGet(*hub_, "/api/models/org/model/revision/main?blobs=true").body);
  for (const Json& s : blobs["siblings"]) {
    EXPECT_TRUE(s["size"].is_number());
    EXPECT_TRUE(s["blobId"].is_string());
    if (s["rfilename"] == "model.safetensors") {
      EXPECT_EQ(s["lfs"]["sha256"], hub_->Etag("model", "org/model", "main", "model.safetensors"));
      EXPECT_EQ(s["lfs"]["size"], 5000000);
      EXPECT_TRUE(s["lfs"]["pointerSize"].is_number());
    } else {
      EXPECT_FALSE(s.contains("lfs"));
      EXPECT_EQ(s["blobId"],
                hub_->Etag("model", "org/model", "main", s["rfilename"].get<std::string>()));
    }
  }
  // expand=... keeps only _id, id and the expanded fields (JS snapshotDownload).
  const Json expanded = Json::parse(
      HubGet(*hub_, "/api/models/org/model/revision/main?expand=sha&expand=private").body);
  EXPECT_EQ(expanded.size(), 4u) << expanded.dump();
  EXPECT_EQ(expanded["sha"], Main());
  EXPECT_EQ(expanded["private"], false);
  const Json gated = Json::parse(
      HubGet(*hub_, "/api/models/org/gated", {{"Authorization", "Bearer hf_approved"}}).body);
  EXPECT_EQ(gated["gated"], "auto");
  const Json dataset = Json::parse(HubGet(*hub_, "/api/datasets/org/data/revision/main").body);
  EXPECT_EQ(dataset["id"], "org/data");
  EXPECT_EQ(dataset["siblings"].size(), 1202u);
}

// Follows Link rel="next" verbatim, as Python does; returns every entry.
std::vector<Json> ListAll(const FakeHub& hub, const std::string& first_target,
                          const std::string& host, std::size_t* pages,
                          std::vector<std::string>* links) {
  std::vector<Json> all;
  std::string target = first_target;
  *pages = 0;
  for (;;) {
    const HttpResponse r = HubGet(hub, target, {{"Host", host}});
    EXPECT_EQ(r.status, 200u) << target;
    if (r.status != 200) break;
    ++*pages;
    for (const Json& e : Json::parse(r.body)) all.push_back(e);
    const std::string link = r.Header("link");
    if (link.empty()) break;
    links->push_back(link);
    std::smatch m;
    EXPECT_TRUE(std::regex_match(link, m, std::regex(R"re(<(https?://[^>]+)>; rel="next")re")))
        << link;
    if (m.empty()) break;
    target = SplitUrl(m[1]).second;
    EXPECT_LT(*pages, 100u);
    if (*pages >= 100) break;
  }
  return all;
}

TEST_F(FakeHubTest, TreePaginationListsEveryFileOnce) {
  std::size_t pages = 0;
  std::vector<std::string> links;
  const std::vector<Json> all =
      ListAll(*hub_, "/api/datasets/org/data/tree/main?recursive=true&expand=false", Host(), &pages,
              &links);
  EXPECT_EQ(pages, 2u);
  std::set<std::string> files;
  std::size_t directories = 0;
  for (const Json& e : all) {
    if (e["type"] == "directory") {
      ++directories;
      EXPECT_TRUE(e["oid"].is_string());
      continue;
    }
    EXPECT_EQ(e["type"], "file");
    EXPECT_TRUE(files.insert(e["path"].get<std::string>()).second) << "twice: " << e["path"];
    EXPECT_TRUE(e["oid"].is_string());
    EXPECT_TRUE(e["size"].is_number());
  }
  EXPECT_EQ(files.size(), 1202u);
  EXPECT_EQ(directories, 1u);  // data/
  EXPECT_TRUE(files.contains("data/part-00000.txt"));
  EXPECT_TRUE(files.contains("data/part-01199.txt"));
  ASSERT_EQ(links.size(), 1u);
  // Absolute, from the Host header, with every parameter, one space, quoted rel.
  EXPECT_TRUE(links[0].starts_with(
      "<http://" + Host() + "/api/datasets/org/data/tree/main?recursive=true&expand=false&cursor="))
      << links[0];
  EXPECT_TRUE(links[0].ends_with(">; rel=\"next\""));

  // expand=true: pages of 50 with lastCommit and securityFileStatus.
  const HttpResponse expanded = HubGet(
      *hub_, "/api/datasets/org/data/tree/main?recursive=true&expand=true", {{"Host", Host()}});
  const Json page = Json::parse(expanded.body);
  EXPECT_EQ(page.size(), 50u);
  EXPECT_NE(expanded.Header("link").find("expand=true"), std::string::npos);
  for (const Json& e : page) {
    EXPECT_EQ(e["lastCommit"]["id"], hub_->Commit("dataset", "org/data", "main"));
    if (e["type"] == "file") {
      EXPECT_TRUE(e.contains("securityFileStatus"));
    }
  }
  // The Host header decides the Link's authority.
  const HttpResponse other = HubGet(*hub_, "/api/datasets/org/data/tree/main?recursive=true",
                                    {{"Host", "proxy.example:8080"}});
  EXPECT_TRUE(other.Header("link").starts_with(
      "<http://proxy.example:8080/api/datasets/org/data/tree/main?"));
  EXPECT_EQ(HubGet(*hub_, "/api/datasets/org/data/tree/main?cursor=bogus").status, 400u);
}

TEST_F(FakeHubTest, TreeEntriesFoldersAndRevisionForms) {
  const Json root = Json::parse(HubGet(*hub_, "/api/models/org/model/tree/main").body);
  std::map<std::string, Json> by_path;
  for (const Json& e : root) by_path[e["path"]] = e;
  ASSERT_TRUE(by_path.contains("sub"));
  EXPECT_EQ(by_path["sub"]["type"], "directory");
  EXPECT_EQ(by_path["sub"]["size"], 0);
  EXPECT_FALSE(by_path.contains("sub/dir/notes.txt"));  // not recursive
  const Json& lfs = by_path["model.safetensors"];
  EXPECT_EQ(lfs["size"], 5000000);
  EXPECT_EQ(lfs["lfs"]["oid"], hub_->Etag("model", "org/model", "main", "model.safetensors"));
  EXPECT_EQ(lfs["lfs"]["size"], 5000000);
  EXPECT_GT(lfs["lfs"]["pointerSize"].get<int>(), 100);
  EXPECT_EQ(by_path["config.json"]["oid"], hub_->Etag("model", "org/model", "main", "config.json"));
  EXPECT_FALSE(by_path["config.json"].contains("lfs"));

  // The folder %2F-joined (Python) and as literal sub-paths (JS).
  const std::string a =
      HubGet(*hub_, "/api/models/org/model/tree/main/sub%2Fdir?recursive=false").body;
  const std::string b =
      HubGet(*hub_, "/api/models/org/model/tree/main/sub/dir?recursive=false").body;
  EXPECT_EQ(a, b);
  const Json sub = Json::parse(a);
  ASSERT_EQ(sub.size(), 1u);
  EXPECT_EQ(sub[0]["path"], "sub/dir/notes.txt");
  const Json recursive =
      Json::parse(HubGet(*hub_, "/api/models/org/model/tree/main/sub?recursive=true").body);
  EXPECT_EQ(recursive.size(), 2u);  // sub/dir and sub/dir/notes.txt

  // refs/pr/1 encoded (Python) and raw (JS); a branch with a slash raw.
  const std::string pr_encoded = HubGet(*hub_, "/api/models/org/model/tree/refs%2Fpr%2F1").body;
  const std::string pr_raw = HubGet(*hub_, "/api/models/org/model/tree/refs/pr/1").body;
  EXPECT_EQ(pr_encoded, pr_raw);
  EXPECT_NE(pr_raw.find("pr.txt"), std::string::npos);
  const std::string feat = HubGet(*hub_, "/api/models/org/model/tree/feat/x").body;
  EXPECT_NE(feat.find("feature.txt"), std::string::npos);
  EXPECT_EQ(feat, HubGet(*hub_, "/api/models/org/model/tree/feat%2Fx").body);

  const HttpResponse missing = HubGet(*hub_, "/api/models/org/model/tree/main/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.Header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(HubGet(*hub_, "/api/models/org/model/tree/nope").Header("x-error-code"),
            "RevisionNotFound");
}

TEST_F(FakeHubTest, LastCommitFollowsHistory) {
  const Json page = Json::parse(HubGet(*hub_, "/api/models/org/model/tree/main?expand=true").body);
  const std::string c1 = hub_->Commit("model", "org/model", "v1.0");
  for (const Json& e : page) {
    const std::string expected = e["path"] == "config.json" ? Main() : c1;
    EXPECT_EQ(e["lastCommit"]["id"], expected) << e["path"];
    EXPECT_TRUE(e["lastCommit"]["title"].is_string());
    EXPECT_TRUE(e["lastCommit"]["date"].is_string());
  }
}

TEST_F(FakeHubTest, PathsInfoAcceptsFormAndJsonBodies) {
  const HttpResponse form =
      Fetch(hub_->port(), "POST", "/api/models/org/model/paths-info/main",
            {{"Content-Type", "application/x-www-form-urlencoded"}},
            "paths=config.json&paths=nope.txt&paths=sub&paths=dir%2F%C3%A9+x%2By.txt"
            "&expand=false");
  EXPECT_EQ(form.status, 200u);
  const Json f = Json::parse(form.body);
  ASSERT_EQ(f.size(), 3u) << form.body;  // unknown paths are omitted
  EXPECT_EQ(f[0]["path"], "config.json");
  EXPECT_EQ(f[0]["type"], "file");
  EXPECT_EQ(f[1]["path"], "sub");
  EXPECT_EQ(f[1]["type"], "directory");
  EXPECT_EQ(f[2]["path"], "dir/\xC3\xA9 x+y.txt");  // form '+' is a space, %2B a plus
  EXPECT_FALSE(f[0].contains("lastCommit"));

  const HttpResponse json =
      Fetch(hub_->port(), "POST", "/api/models/org/model/paths-info/" + Main(),
            {{"Content-Type", "application/json"}},
            R"({"paths":["model.safetensors","missing"],"expand":true})");
  EXPECT_EQ(json.status, 200u);
  const Json j = Json::parse(json.body);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["lfs"]["oid"], hub_->Etag("model", "org/model", "main", "model.safetensors"));
  EXPECT_TRUE(j[0].contains("lastCommit"));
  EXPECT_TRUE(j[0].contains("securityFileStatus"));

  const HttpResponse pr =
      Fetch(hub_->port(), "POST", "/api/models/org/model/paths-info/refs%2Fpr%2F1",
            {{"Content-Type", "application/json"}}, R"({"paths":["pr.txt"]})");
  EXPECT_EQ(Json::parse(pr.body).size(), 1u);
  EXPECT_EQ(Fetch(hub_->port(), "GET", "/api/models/org/model/paths-info/main").status, 405u);
}

TEST_F(FakeHubTest, RefsListsBranchesTagsAndPullRequestsOnRequest) {
  const Json refs = Json::parse(HubGet(*hub_, "/api/models/org/model/refs").body);
  EXPECT_TRUE(refs["branches"].is_array());
  EXPECT_TRUE(refs["converts"].is_array());
  EXPECT_TRUE(refs["tags"].is_array());
  EXPECT_FALSE(refs.contains("pullRequests"));
  std::map<std::string, std::string> branches;
  for (const Json& b : refs["branches"]) {
    EXPECT_EQ(b["ref"], "refs/heads/" + b["name"].get<std::string>());
    branches[b["name"]] = b["targetCommit"];
  }
  EXPECT_EQ(branches["main"], Main());
  EXPECT_EQ(branches["feat/x"], hub_->Commit("model", "org/model", "feat/x"));
  ASSERT_EQ(refs["tags"].size(), 2u);
  EXPECT_EQ(refs["tags"][0]["name"], "v1.0");
  EXPECT_EQ(refs["tags"][0]["ref"], "refs/tags/v1.0");
  EXPECT_EQ(refs["tags"][1]["name"], "v1.1");
  EXPECT_EQ(refs["tags"][1]["targetCommit"], Main());

  const Json with_prs = Json::parse(HubGet(*hub_, "/api/models/org/model/refs?include_prs=1").body);
  ASSERT_EQ(with_prs["pullRequests"].size(), 1u);
  EXPECT_EQ(with_prs["pullRequests"][0]["ref"], "refs/pr/1");
  EXPECT_EQ(with_prs["pullRequests"][0]["targetCommit"],
            hub_->Commit("model", "org/model", "refs/pr/1"));

  const Json data = Json::parse(HubGet(*hub_, "/api/datasets/org/data/refs").body);
  ASSERT_EQ(data["converts"].size(), 1u);
  EXPECT_EQ(data["converts"][0]["ref"], "refs/convert/parquet");
  EXPECT_EQ(
      Json::parse(HubGet(*hub_, "/api/datasets/org/data/tree/refs/convert/parquet").body).size(),
      2u);
}

TEST_F(FakeHubTest, WhoAmI) {
  const HttpResponse anonymous = HubGet(*hub_, "/api/whoami-v2");
  EXPECT_EQ(anonymous.status, 401u);
  const HttpResponse bad = HubGet(*hub_, "/api/whoami-v2", {{"Authorization", "Bearer hf_nobody"}});
  EXPECT_EQ(bad.status, 401u);
  EXPECT_EQ(bad.Header("x-error-message"), "Invalid credentials in Authorization header");
  const HttpResponse ok = HubGet(*hub_, "/api/whoami-v2", {{"Authorization", "Bearer hf_user"}});
  EXPECT_EQ(ok.status, 200u);
  const Json me = Json::parse(ok.body);
  EXPECT_EQ(me["name"], "user");
  EXPECT_EQ(me["type"], "user");
  EXPECT_EQ(me["auth"]["type"], "access_token");
  EXPECT_TRUE(me["auth"]["accessToken"]["role"].is_string());
  EXPECT_EQ(
      Json::parse(
          HubGet(*hub_, "/api/whoami-v2", {{"authorization", "Bearer hf_owner"}}).body)["name"],
      "owner");
}

TEST_F(FakeHubTest, CommitsListFollowsParents) {
  const HttpResponse r = HubGet(*hub_, "/api/models/org/model/commits/main");
  const Json commits = Json::parse(r.body);
  ASSERT_EQ(commits.size(), 2u);
  EXPECT_EQ(commits[0]["id"], Main());
  EXPECT_EQ(commits[1]["id"], hub_->Commit("model", "org/model", "v1.0"));
  EXPECT_EQ(r.Header("x-total-count"), "2");
}

// --- Errors (§3.2) -------------------------------------------------------

struct ErrorRow {
  std::string name;
  std::string repo;   // model id
  std::string token;  // "" = none
  std::string revision;
  std::string file;
  unsigned status;
  std::string code;         // X-Error-Code, "" = absent
  std::string message_has;  // substring of X-Error-Message
};

TEST_F(FakeHubTest, ErrorTableOnHeadRangedGetAndRepoInfo) {
  const ErrorRow rows[] = {
      {"missing repo, anonymous", "org/missing", "", "main", "config.json", 401, "RepoNotFound",
       "Repository not found"},
      {"private repo, anonymous", "org/private", "", "main", "config.json", 401, "RepoNotFound",
       "Repository not found"},
      {"missing repo, valid token", "org/missing", "hf_user", "main", "config.json", 404,
       "RepoNotFound", ""},
      {"private repo, other valid token", "org/private", "hf_approved", "main", "config.json", 404,
       "RepoNotFound", ""},
      {"invalid token", "org/model", "hf_invalid", "main", "config.json", 401, "",
       "Invalid credentials in Authorization header"},
      {"invalid token on a private repo", "org/private", "hf_invalid", "main", "config.json", 401,
       "", "Invalid credentials in Authorization header"},
      {"gated, anonymous", "org/gated", "", "main", "config.json", 401, "GatedRepo",
       "Access to model org/gated is restricted. You must have access to it and be authenticated"},
      {"gated, unapproved token", "org/gated", "hf_user", "main", "config.json", 403, "GatedRepo",
       "not in the authorized list"},
      {"gated, another repo's token", "org/gated", "hf_owner", "main", "config.json", 403,
       "GatedRepo", "not in the authorized list"},
      {"unknown revision", "org/model", "", "nope", "config.json", 404, "RevisionNotFound", ""},
      {"unknown commit", "org/model", "", std::string(40, 'a'), "config.json", 404,
       "RevisionNotFound", ""},
  };
  for (const ErrorRow& row : rows) {
    SCOPED_TRACE(row.name);
    hubcache::testing::Headers headers;
    if (!row.token.empty()) headers.emplace_back("Authorization", "Bearer " + row.token);
    const std::string resolve = "/" + row.repo + "/resolve/" + row.revision + "/" + row.file;
    const std::string info = "/api/models/" + row.repo + "/revision/" + row.revision;
    auto ranged = headers;
    ranged.emplace_back("Range", "bytes=0-0");
    const HttpResponse answers[] = {
        HubHead(*hub_, resolve, headers),
        HubGet(*hub_, resolve, ranged),
        HubGet(*hub_, info, headers),
        HubGet(*hub_, "/api/models/" + row.repo + "/tree/" + row.revision, headers),
        Fetch(
            hub_->port(), "POST", "/api/models/" + row.repo + "/paths-info/" + row.revision,
            [&] {
              auto h = headers;
              h.emplace_back("Content-Type", "application/json");
              return h;
            }(),
            R"({"paths":["config.json"]})"),
    };
    for (const HttpResponse& r : answers) {
      EXPECT_EQ(r.status, row.status);
      EXPECT_EQ(r.Header("x-error-code"), row.code);
      EXPECT_NE(r.Header("x-error-message").find(row.message_has), std::string::npos)
          << r.Header("x-error-message");
    }
    EXPECT_TRUE(answers[0].body.empty());  // HEAD: headers only
    const Json body = Json::parse(answers[1].body);
    EXPECT_TRUE(body["error"].is_string());
  }
  // Repo-level errors also cover resolve-cache, refs and the bare repo info.
  EXPECT_EQ(HubGet(*hub_, "/api/models/org/private").status, 401u);
  EXPECT_EQ(HubGet(*hub_, "/api/models/org/gated/refs").Header("x-error-code"), "GatedRepo");
  EXPECT_EQ(HubGet(*hub_, "/api/resolve-cache/models/org/private/main/config.json").status, 401u);
}

TEST_F(FakeHubTest, UnknownFileIs404EntryNotFoundWithCommit) {
  for (const std::string method : {"HEAD", "GET"}) {
    const HttpResponse r = Fetch(hub_->port(), method, "/org/model/resolve/main/nope.bin");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(r.Header("x-error-code"), "EntryNotFound");
    EXPECT_EQ(r.Header("x-repo-commit"), Main());
  }
  EXPECT_EQ(HubHead(*hub_, "/org/model/resolve/main/sub").Header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(HubHead(*hub_, "/api/resolve-cache/models/org/model/" + Main() + "/nope")
                .Header("x-error-code"),
            "EntryNotFound");
}

// A renamed repo (huggingface_hub's renamed-repo tests): the old name is a
// relative 307 to the same request under the new name, on every route.
TEST_F(FakeHubTest, RenamedRepoRedirectsEveryRouteRelatively) {
  const std::pair<std::string, std::string> moves[] = {
      {"/org/old-model/resolve/main/config.json", "/org/model/resolve/main/config.json"},
      {"/org/old-model/resolve/v1.0/dir/%C3%A9%20x%2By.txt",
       "/org/model/resolve/v1.0/dir/%C3%A9%20x%2By.txt"},
      {"/org/old-model/raw/main/config.json", "/org/model/raw/main/config.json"},
      {"/api/models/org/old-model", "/api/models/org/model"},
      {"/api/models/org/old-model/revision/main?expand=sha",
       "/api/models/org/model/revision/main?expand=sha"},
      {"/api/models/org/old-model/tree/main/sub?recursive=true",
       "/api/models/org/model/tree/main/sub?recursive=true"},
      {"/api/models/org/old-model/refs", "/api/models/org/model/refs"},
      {"/api/resolve-cache/models/org/old-model/" + Main() + "/config.json",
       "/api/resolve-cache/models/org/model/" + Main() + "/config.json"},
  };
  for (const auto& [old_target, new_target] : moves) {
    for (const std::string method : {"HEAD", "GET"}) {
      const HttpResponse r = Fetch(hub_->port(), method, old_target);
      EXPECT_EQ(r.status, 307u) << method << " " << old_target;
      EXPECT_EQ(r.Header("location"), new_target) << method << " " << old_target;
      EXPECT_EQ(r.Header("x-repo-commit"), "") << "the Hub has not resolved anything yet";
    }
  }
  const HttpResponse paths =
      Fetch(hub_->port(), "POST", "/api/models/org/old-model/paths-info/main",
            {{"Content-Type", "application/json"}}, R"({"paths":["config.json"]})");
  EXPECT_EQ(paths.status, 307u);
  EXPECT_EQ(paths.Header("location"), "/api/models/org/model/paths-info/main");
  // Followed as huggingface_hub follows it (the path of the Location), the
  // new name answers as usual.
  const HttpResponse moved = HubHead(*hub_, "/org/old-model/resolve/main/config.json");
  const HttpResponse followed = HubHead(*hub_, moved.Header("location"));
  EXPECT_EQ(followed.status, 307u);
  EXPECT_EQ(followed.Header("x-repo-commit"), Main());
  EXPECT_TRUE(followed.Header("location").starts_with("/api/resolve-cache/models/org/model/"));
  // An invalid token is refused before anything is revealed.
  EXPECT_EQ(HubHead(*hub_, "/org/old-model/resolve/main/config.json",
                    {{"Authorization", "Bearer hf_invalid"}})
                .status,
            401u);
}

TEST(FakeHubFixtureTest, ARenamedPrivateRepoRedirectsOnlyThoseWhoMaySeeIt) {
  Options options;
  options.fixture_text = R"(
[[repo]]
id = "org/secret"
private = true
tokens = ["hf_owner"]
renamed_from = ["org/old-secret"]
  [[repo.commit]]
  files = [ { path = "a.txt", text = "hello" } ]
)";
  auto hub = FakeHub::Start(options);
  const HttpResponse anonymous = HubHead(*hub, "/org/old-secret/resolve/main/a.txt");
  EXPECT_EQ(anonymous.status, 401u);
  EXPECT_EQ(anonymous.Header("x-error-code"), "RepoNotFound");
  EXPECT_EQ(anonymous.Header("location"), "");
  const HttpResponse other =
      HubGet(*hub, "/api/models/org/old-secret", {{"Authorization", "Bearer hf_user"}});
  EXPECT_EQ(other.status, 404u);
  EXPECT_EQ(other.Header("location"), "");
  const HttpResponse owner =
      HubHead(*hub, "/org/old-secret/resolve/main/a.txt", {{"Authorization", "Bearer hf_owner"}});
  EXPECT_EQ(owner.status, 307u);
  EXPECT_EQ(owner.Header("location"), "/org/secret/resolve/main/a.txt");
}

TEST_F(FakeHubTest, GrantedTokensGetThrough) {
  const HttpResponse gated = HubHead(*hub_, "/org/gated/resolve/main/model.safetensors",
                                     {{"Authorization", "Bearer hf_approved"}});
  EXPECT_EQ(gated.status, 302u);
  const HttpResponse cdn = GetUrl(gated.Header("location"));  // no Authorization
  EXPECT_EQ(Sha256(cdn.body), hub_->Etag("model", "org/gated", "main", "model.safetensors"));
  const HttpResponse priv = HubHead(*hub_, "/org/private/resolve/main/config.json",
                                    {{"Authorization", "bearer hf_owner"}});
  EXPECT_EQ(priv.status, 307u);
  const HttpResponse content =
      HubGet(*hub_, priv.Header("location"), {{"Authorization", "Bearer hf_owner"}});
  EXPECT_EQ(content.body, hub_->FileContent("model", "org/private", "main", "config.json"));
  EXPECT_EQ(HubGet(*hub_, "/api/models/org/private", {{"Authorization", "Bearer hf_owner"}}).status,
            200u);
}

TEST_F(FakeHubTest, UnknownRoutesAndMethods) {
  EXPECT_EQ(HubGet(*hub_, "/").status, 404u);
  EXPECT_EQ(HubGet(*hub_, "/api/nothing").status, 404u);
  EXPECT_EQ(HubGet(*hub_, "/api/models/org/model/nothing").status, 404u);
  EXPECT_EQ(Fetch(hub_->port(), "DELETE", "/org/model/resolve/main/config.json").status, 405u);
  EXPECT_EQ(HubHead(*hub_, "/org/model/resolve/main/%ZZ").status, 400u);
}

// --- Mutations and knobs on the model ------------------------------------

TEST_F(FakeHubTest, MoveBranchChangesWhatMainResolvesTo) {
  const std::string before = Main();
  hub_->MoveBranch("model", "org/model", "main", "c3");
  const std::string after = Main();
  EXPECT_NE(after, before);
  const HttpResponse r = HubHead(*hub_, "/org/model/resolve/main/model.safetensors");
  EXPECT_EQ(r.Header("x-repo-commit"), after);
  EXPECT_EQ(r.Header("x-linked-etag"),
            Quoted(hub_->Etag("model", "org/model", after, "model.safetensors")));
  EXPECT_NE(hub_->Etag("model", "org/model", after, "model.safetensors"),
            hub_->Etag("model", "org/model", before, "model.safetensors"));
  EXPECT_EQ(Json::parse(HubGet(*hub_, "/api/models/org/model").body)["sha"], after);

  // The control endpoint does the same, by sha.
  const HttpResponse moved = Fetch(
      hub_->port(), "POST", "/_fake/move?type=model&repo=org/model&branch=main&commit=" + before);
  EXPECT_EQ(moved.status, 200u);
  EXPECT_EQ(Main(), before);
  EXPECT_EQ(HubHead(*hub_, "/org/model/resolve/main/config.json").Header("x-repo-commit"), before);
  EXPECT_EQ(
      Fetch(hub_->port(), "POST", "/_fake/move?type=model&repo=org/model&branch=main&commit=zz")
          .status,
      404u);
  EXPECT_THROW(hub_->MoveBranch("model", "org/model", "main", "nope"), std::invalid_argument);
  EXPECT_THROW(hub_->MoveBranch("model", "org/none", "main", "c1"), std::invalid_argument);
}

TEST_F(FakeHubTest, ExpectedContentMatchesDigestsAndIsDeterministic) {
  auto other = FakeHub::Start(Options{});
  for (const std::string path :
       {"config.json", "tokenizer.json", "model.safetensors", "sub/dir/notes.txt"}) {
    const std::string content = hub_->FileContent("model", "org/model", "main", path);
    EXPECT_EQ(content, other->FileContent("model", "org/model", "main", path));
    const bool lfs = path == "model.safetensors";
    EXPECT_EQ(hub_->Etag("model", "org/model", "main", path),
              lfs ? Sha256(content) : GitSha1(content));
    EXPECT_EQ(hub_->FileSize("model", "org/model", "main", path), content.size());
    EXPECT_EQ(hub_->FileContent("model", "org/model", "main", path, 3, 7), content.substr(3, 7));
  }
  EXPECT_EQ(hub_->Commit("model", "org/model", "main"),
            other->Commit("model", "org/model", "main"));
  EXPECT_EQ(hub_->FileContent("model", "org/model", "main", "config.json", 1'000'000), "");
  EXPECT_THROW(hub_->FileContent("model", "org/model", "main", "nope"), std::invalid_argument);
  EXPECT_THROW(hub_->Commit("model", "org/model", "nope"), std::invalid_argument);
  EXPECT_THROW(hub_->Etag("dataset", "org/model", "main", "config.json"), std::invalid_argument);
}

TEST_F(FakeHubTest, KeepAliveOnBothListeners) {
  auto hub_conn = HttpConnection::Connect("127.0.0.1", hub_->port());
  ASSERT_NE(hub_conn, nullptr);
  for (int i = 0; i < 5; ++i) {
    auto r = hub_conn->Request("HEAD", "/org/model/resolve/main/config.json");
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->keep_alive);
    auto g = hub_conn->Request("GET", "/api/models/org/model/refs");
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->status, 200u);
  }
  const auto [port, target] =
      SplitUrl(CdnLocation(*hub_, "/org/model/resolve/main/model.safetensors"));
  auto cdn_conn = HttpConnection::Connect("127.0.0.1", port);
  ASSERT_NE(cdn_conn, nullptr);
  for (int i = 0; i < 5; ++i) {
    auto r = cdn_conn->Request(
        "GET", target, {{"Range", "bytes=" + std::to_string(i) + "-" + std::to_string(i + 9)}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 206u);
    EXPECT_EQ(r->body.size(), 10u);
  }
}

TEST(FakeHubFixtureTest, BadFixturesFailWithClearMessages) {
  struct Case {
    std::string text, message;
  };
  const Case cases[] = {
      {"[[repo]]\nid = \"a/b\"\ntypo = 1\n[[repo.commit]]\nfiles = []\n",
       "3:1: unknown key 'typo'"},
      {"[[repo]]\nid = \"a/b\"\n", "needs at least one [[repo.commit]]"},
      {"[[repo]]\nid = \"a/b\"\n[[repo.commit]]\nfiles = [{path = \"x\"}]\n", "needs text or size"},
      {"[[repo]]\nid = \"a/b\"\n[[repo.commit]]\nfiles = [{path = \"x\", text = \"1\"}, {path = "
       "\"x/y\", "
       "text = \"2\"}]\n",
       "both a file and a directory"},
      {"[[repo]]\nid = \"a/b\"\n[[repo.commit]]\nfiles = []\n[repo.branches]\nmain = \"c9\"\n",
       "unknown commit 'c9'"},
      {"[[repo]]\nid = \"a/b\"\ngated = \"yes\"\n[[repo.commit]]\n", "gated must be"},
      {"[[repo]]\nid = \"a/b\"\n[[repo.commit]]\nfiles = [{path = \"../x\", text = \"\"}]\n",
       "bad file path"},
      {"this is not toml", "<fixture_text>:1:"},
      {"[[repo]]\nid = \"a/b\"\nrenamed_from = [\"a/b\"]\n[[repo.commit]]\n",
       "bad earlier id 'a/b'"},
      {"[[repo]]\nid = \"a/b\"\n[[repo.commit]]\n[[repo]]\nid = \"a/c\"\nrenamed_from = "
       "[\"a/b\"]\n[[repo.commit]]\n",
       "renamed_from 'a/b' of repo 'a/c' is the id of a repo"},
  };
  for (const Case& c : cases) {
    Options options;
    options.fixture_text = c.text;
    try {
      FakeHub::Start(options);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    }
  }
  Options missing;
  missing.fixture = "/nonexistent/fixture.toml";
  EXPECT_THROW(FakeHub::Start(missing), std::runtime_error);
}

TEST(FakeHubFixtureTest, InlineFixtureWithExplicitShasAndSeries) {
  Options options;
  options.fixture_text = R"(
users = ["hf_alice"]
[[repo]]
id = "legacy"
  [[repo.commit]]
  sha = "0123456789abcdef0123456789abcdef01234567"
  files = [ { path = "a.txt", text = "hello" } ]
  series = [ { prefix = "w/", digits = 2, count = 3, size = 8, seed = 5, lfs = true } ]
)";
  auto hub = FakeHub::Start(options);
  EXPECT_EQ(hub->Commit("model", "legacy", "main"), "0123456789abcdef0123456789abcdef01234567");
  // A legacy id without namespace resolves on both the file and the API paths.
  const HttpResponse r = HubHead(*hub, "/legacy/resolve/main/a.txt");
  EXPECT_EQ(r.status, 307u);
  EXPECT_EQ(HubGet(*hub, r.Header("location")).body, "hello");
  EXPECT_EQ(HubHead(*hub, "/legacy/resolve/main/w/01").status, 302u);
  EXPECT_EQ(Json::parse(HubGet(*hub, "/api/models/legacy/tree/main/w").body).size(), 3u);
  EXPECT_EQ(HubGet(*hub, "/api/whoami-v2", {{"Authorization", "Bearer hf_alice"}}).status, 200u);
  EXPECT_EQ(hub->Etag("model", "legacy", "main", "a.txt"), GitSha1("hello"));
}

}  // namespace
}  // namespace hubcache::fakehub

namespace hubcache::fakehub {
namespace {

using hubcache::testing::Headers;
using testing::Fetch;

// Access changes at run time (SetPrivate, SetTokenAccess, DeleteRepo) are
// seen by the next request, as on the Hub.
TEST(FakeHubAccessTest, OwnersChangeWhoMayReadARepo) {
  auto hub = FakeHub::Start({});
  const std::string gated = "/org/gated/resolve/main/config.json";
  const std::string model = "/api/models/org/model";
  const Headers approved = {{"Authorization", "Bearer hf_approved"}};
  EXPECT_EQ(Fetch(hub->port(), "HEAD", gated, approved).status, 307u);
  hub->SetTokenAccess("model", "org/gated", "hf_approved", false);
  auto refused = Fetch(hub->port(), "HEAD", gated, approved);
  EXPECT_EQ(refused.status, 403u);
  EXPECT_EQ(refused.Header("x-error-code"), "GatedRepo");
  hub->SetTokenAccess("model", "org/gated", "hf_approved", true);
  EXPECT_EQ(Fetch(hub->port(), "HEAD", gated, approved).status, 307u);

  EXPECT_EQ(Fetch(hub->port(), "GET", model).status, 200u);
  hub->SetPrivate("model", "org/model", true);
  EXPECT_EQ(Fetch(hub->port(), "GET", model).status, 401u);
  EXPECT_EQ(Fetch(hub->port(), "GET", model, {{"Authorization", "Bearer hf_user"}}).status, 404u);
  hub->SetTokenAccess("model", "org/model", "hf_user", true);
  auto member = Fetch(hub->port(), "GET", model, {{"Authorization", "Bearer hf_user"}});
  EXPECT_EQ(member.status, 200u);
  EXPECT_NE(member.body.find("\"private\":true"), std::string::npos) << member.body;

  hub->DeleteRepo("model", "org/private");
  auto gone = Fetch(hub->port(), "GET", "/api/models/org/private",
                    {{"Authorization", "Bearer hf_owner"}});
  EXPECT_EQ(gone.status, 404u);
  EXPECT_EQ(gone.Header("x-error-code"), "RepoNotFound");
  EXPECT_THROW(hub->SetPrivate("model", "org/nope", true), std::invalid_argument);
  EXPECT_THROW(hub->SetTokenAccess("model", "org/model", "hf_nobody_knows", true),
               std::invalid_argument);
  // Everything as the fixture has it again.
  hub->ResetAccess();
  EXPECT_EQ(Fetch(hub->port(), "GET", "/api/models/org/private", {{"Authorization", "Bearer hf_owner"}})
                .status,
            200u);
}

}  // namespace
}  // namespace hubcache::fakehub
