#include "proxy/file_resolver.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "store/token_hmac.h"
#include "tests/fakehub/fake_hub.h"
#include "tests/support/http_client.h"
#include "tests/support/run_async.h"
#include "tests/support/temp_dir.h"

namespace hubcache::proxy {
namespace {

using fakehub::FakeHub;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::RunAsync;

// A small Hub: a public model with two commits (main = c2, tag v1.0 = c1)
// and c3 on no branch, a gated model and a private one.
constexpr std::string_view kFixture = R"(
users = []

[[repo]]
id = "org/model"
  [[repo.commit]]
  name = "c1"
  sha = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"
  files = [
    { path = "config.json", text = '{"version": 1}' },
    { path = "model.safetensors", lfs = true, size = 100000, seed = 7 },
  ]
  [[repo.commit]]
  name = "c2"
  sha = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2"
  parent = "c1"
  files = [ { path = "config.json", text = '{"version": 2}' } ]
  [[repo.commit]]
  name = "c3"
  sha = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
  parent = "c2"
  files = [ { path = "config.json", text = '{"version": 3}' } ]
  [repo.branches]
  main = "c2"
  [repo.tags]
  "v1.0" = "c1"

[[repo]]
id = "org/gated"
gated = "auto"
tokens = ["hf_approved"]
  [[repo.commit]]
  files = [ { path = "config.json", text = '{"gated": true}' } ]

[[repo]]
id = "org/private"
private = true
tokens = ["hf_owner"]
  [[repo.commit]]
  files = [ { path = "config.json", text = '{"private": true}' } ]
)";

constexpr std::int64_t kGrantTtl = 600;
constexpr std::int64_t kPublicTtl = 300;

// `pair` 20 times: a 40-hex commit.
std::string Repeat(std::string_view pair) {
  std::string out;
  for (int i = 0; i < 20; ++i) out += pair;
  return out;
}

store::RepoId Model(std::string name) { return {store::RepoType::kModel, std::move(name)}; }

FileRef Ref(std::string repo, std::string revision, std::string path) {
  return {Model(std::move(repo)), std::move(revision), std::move(path)};
}

std::int64_t WallSeconds() {
  return std::chrono::duration_cast<seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A header of a FileAnswer, or "".
std::string Header(const FileAnswer& answer, std::string_view name) {
  for (const auto& [n, v] : answer.headers) {
    if (n == name) return v;
  }
  return {};
}

// FileResolver over a real index (temporary directory) and the fake Hub,
// with the access policy on a clock the test moves. Refs use the wall
// clock, so ref tests set fetched_at with margins of tens of seconds.
class FileResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fakehub::Options options;
    options.fixture_text = std::string(kFixture);
    hub_ = FakeHub::Start(options);
    auto index = store::Index::Open(dir_ / "index");
    ASSERT_TRUE(index) << index.error().message();
    index_ = std::move(*index);
    auto hmac = store::TokenHmac::LoadOrCreate(dir_.path());
    ASSERT_TRUE(hmac) << hmac.error().message();
    AccessOptions access;
    access.public_ttl = seconds(kPublicTtl);
    access.grant_ttl = seconds(kGrantTtl);
    access_ = std::make_unique<AccessPolicy>(*index_, *hmac, access, [this] { return now_; });
    hmac_.emplace(*hmac);
    client_ = Client(hub_->url());
    resolver_ = Resolver(*client_, /*offline=*/false, seconds(3600));
    ASSERT_EQ(hub_->Commit("model", "org/model", "main"), c2_);
  }
  void TearDown() override {
    resolver_.reset();
    offline_resolver_.reset();
    client_.reset();
    pool_.join();
    access_.reset();
    index_.reset();
  }

  std::unique_ptr<HubClient> Client(const std::string& url) {
    UpstreamOptions upstream;
    upstream.url = url;
    upstream.max_retries = 1;
    upstream.connect_timeout = seconds(5);
    auto client = HubClient::Create(upstream, {}, RetryPolicy{milliseconds(5), milliseconds(20)});
    EXPECT_TRUE(client) << client.error().message();
    return client ? std::move(*client) : nullptr;
  }
  std::unique_ptr<FileResolver> Resolver(HubClient& client, bool offline,
                                         std::chrono::milliseconds ref_ttl,
                                         std::string url = {}) {
    CacheOptions cache;
    cache.ref_ttl = ref_ttl;
    return std::make_unique<FileResolver>(client, *index_, *access_, metrics_,
                                          pool_.get_executor(), url.empty() ? hub_->url() : url,
                                          offline, cache);
  }
  FileAnswer Resolve(FileResolver& resolver, const FileRef& ref, const Secret& token = {},
                     bool need_download_url = false) {
    return RunAsync(ioc_, resolver.Resolve(ref, token, need_download_url), seconds(30));
  }
  FileAnswer Resolve(const FileRef& ref, const Secret& token = {},
                     bool need_download_url = false) {
    return Resolve(*resolver_, ref, token, need_download_url);
  }
  // Requests the fake Hub answered since the last ClearLog().
  std::size_t HubRequests() const { return hub_->RequestCount(); }

  void ExpectFound(const FileAnswer& answer, const std::string& commit, std::string_view path,
                   std::string_view repo = "org/model") {
    ASSERT_EQ(answer.kind, FileAnswer::Kind::kFound) << answer.status << " " << answer.message;
    EXPECT_EQ(answer.commit, commit);
    ASSERT_TRUE(answer.file.exists);
    ASSERT_TRUE(answer.file.digest);
    EXPECT_EQ(answer.file.digest->Hex(), hub_->Etag("model", repo, commit, path));
    EXPECT_EQ(answer.file.size, hub_->FileSize("model", repo, commit, path));
  }

  // The Hub's own answer to a HEAD of the resolve URL, for comparing relays.
  testing::HttpResponse HubHead(const FileRef& ref, const std::string& token) {
    testing::Headers headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    auto response = testing::HttpRequest("127.0.0.1", hub_->port(), "HEAD",
                                         "/" + ref.repo.name + "/resolve/" + ref.revision + "/" +
                                             ref.path,
                                         headers);
    EXPECT_TRUE(response);
    return response.value_or(testing::HttpResponse{});
  }

  testing::TempDir dir_{"hubcache-file-resolver-test"};
  std::unique_ptr<FakeHub> hub_;
  std::unique_ptr<store::Index> index_;
  std::optional<store::TokenHmac> hmac_;
  std::int64_t now_ = WallSeconds();
  std::unique_ptr<AccessPolicy> access_;
  Metrics metrics_;
  net::io_context ioc_;
  net::thread_pool pool_{2};
  std::unique_ptr<HubClient> client_;
  std::unique_ptr<FileResolver> resolver_;
  std::unique_ptr<FileResolver> offline_resolver_;
  // The commits of org/model (fixture shas).
  const std::string c1_ = Repeat("c1"), c2_ = Repeat("c2"), c3_ = Repeat("c3");
};

TEST_F(FileResolverTest, AMissAsksTheHubOnceAndRecordsRefFileAndPublicFact) {
  auto answer = Resolve(Ref("org/model", "main", "config.json"));
  ExpectFound(answer, c2_, "config.json");
  EXPECT_FALSE(answer.from_cache);
  EXPECT_FALSE(answer.stale);
  EXPECT_FALSE(answer.file.lfs);
  EXPECT_EQ(answer.file.digest->kind(), store::DigestKind::kGitSha1);
  EXPECT_TRUE(answer.download_url.starts_with(hub_->url() + "/api/resolve-cache/"));
  // Asked again at the commit: a branch that moves cannot change the bytes.
  EXPECT_EQ(answer.resolve_url, hub_->url() + "/org/model/resolve/" + c2_ + "/config.json");

  auto ref = index_->GetRef(Model("org/model"), "main");
  ASSERT_TRUE(ref && *ref);
  EXPECT_EQ((*ref)->commit, c2_);
  EXPECT_NEAR((*ref)->fetched_at, WallSeconds(), 60);
  auto file = index_->GetFile(Model("org/model"), c2_, "config.json");
  ASSERT_TRUE(file && *file);
  EXPECT_EQ(**file, answer.file);
  auto fact = index_->GetAccess(Model("org/model"));
  ASSERT_TRUE(fact && *fact);
  EXPECT_EQ((*fact)->visibility, store::Visibility::kPublic);
  EXPECT_EQ((*fact)->checked_at, now_);
}

TEST_F(FileResolverTest, AnLfsFileIsFoundWithItsSha256AndACdnUrl) {
  auto answer = Resolve(Ref("org/model", "main", "model.safetensors"));
  ExpectFound(answer, c2_, "model.safetensors");
  EXPECT_TRUE(answer.file.lfs);
  EXPECT_EQ(answer.file.digest->kind(), store::DigestKind::kSha256);
  EXPECT_TRUE(answer.download_url.starts_with(hub_->cdn_url())) << answer.download_url;
}

TEST_F(FileResolverTest, AKnownFileIsAnsweredFromTheCacheUntilADownloadUrlIsNeeded) {
  ExpectFound(Resolve(Ref("org/model", "main", "config.json")), c2_, "config.json");
  hub_->ClearLog();
  auto cached = Resolve(Ref("org/model", "main", "config.json"));
  ExpectFound(cached, c2_, "config.json");
  EXPECT_TRUE(cached.from_cache);
  EXPECT_TRUE(cached.download_url.empty());
  EXPECT_EQ(HubRequests(), 0u);

  // The blob is not stored: a fresh (signed, expiring) URL comes from the Hub.
  auto fresh = Resolve(Ref("org/model", "main", "config.json"), {}, /*need_download_url=*/true);
  ExpectFound(fresh, c2_, "config.json");
  EXPECT_FALSE(fresh.from_cache);
  EXPECT_FALSE(fresh.download_url.empty());
  EXPECT_GT(HubRequests(), 0u);
}

TEST_F(FileResolverTest, ABranchIsTrustedForRefTtlThenAskedAgain) {
  ExpectFound(Resolve(Ref("org/model", "main", "config.json")), c2_, "config.json");
  hub_->MoveBranch("model", "org/model", "main", c3_);
  hub_->ClearLog();

  // Within ref_ttl (1 h): the cached commit, without asking.
  auto cached = Resolve(Ref("org/model", "main", "config.json"));
  ExpectFound(cached, c2_, "config.json");
  EXPECT_TRUE(cached.from_cache);
  EXPECT_EQ(HubRequests(), 0u);

  // A ref fetched 40 s ago with ref_ttl 30 s: asked again, the move is seen.
  resolver_->SetCacheOptions({.ref_ttl = seconds(30)});
  ASSERT_TRUE(index_->PutRef(Model("org/model"), "main",
                             {.commit = c2_, .fetched_at = WallSeconds() - 40}));
  auto moved = Resolve(Ref("org/model", "main", "config.json"));
  ExpectFound(moved, c3_, "config.json");
  EXPECT_FALSE(moved.from_cache);
  EXPECT_GT(HubRequests(), 0u);
  auto ref = index_->GetRef(Model("org/model"), "main");
  ASSERT_TRUE(ref && *ref);
  EXPECT_EQ((*ref)->commit, c3_);

  // One fetched 10 s ago is still fresh under the same TTL.
  hub_->MoveBranch("model", "org/model", "main", c1_);
  ASSERT_TRUE(index_->PutRef(Model("org/model"), "main",
                             {.commit = c3_, .fetched_at = WallSeconds() - 10}));
  hub_->ClearLog();
  auto fresh = Resolve(Ref("org/model", "main", "config.json"));
  ExpectFound(fresh, c3_, "config.json");
  EXPECT_EQ(HubRequests(), 0u);

  // ref_ttl 0: every request asks.
  resolver_->SetCacheOptions({.ref_ttl = seconds(0)});
  ExpectFound(Resolve(Ref("org/model", "main", "config.json")), c1_, "config.json");
  EXPECT_GT(HubRequests(), 0u);
}

TEST_F(FileResolverTest, AFortyHexRevisionIsACommitAndNeverARef) {
  resolver_->SetCacheOptions({.ref_ttl = seconds(0)});
  auto first = Resolve(Ref("org/model", c1_, "config.json"));
  ExpectFound(first, c1_, "config.json");
  EXPECT_FALSE(first.from_cache);
  // No ref is recorded under the commit's own name.
  EXPECT_FALSE(index_->GetRef(Model("org/model"), c1_).value().has_value());

  // Even with ref_ttl 0, the commit is answered from the cache.
  hub_->ClearLog();
  auto again = Resolve(Ref("org/model", c1_, "config.json"));
  ExpectFound(again, c1_, "config.json");
  EXPECT_TRUE(again.from_cache);
  EXPECT_FALSE(again.stale);
  EXPECT_EQ(HubRequests(), 0u);

  // A file recorded at the commit by another request is answered at once.
  ASSERT_TRUE(index_->PutFile(Model("org/model"), c3_, "config.json",
                              {.exists = true, .lfs = false,
                               .digest = store::Digest::Parse(
                                             store::DigestKind::kGitSha1,
                                             hub_->Etag("model", "org/model", c3_, "config.json"))
                                             .value(),
                               .size = hub_->FileSize("model", "org/model", c3_, "config.json")}));
  auto recorded = Resolve(Ref("org/model", c3_, "config.json"));
  ExpectFound(recorded, c3_, "config.json");
  EXPECT_EQ(HubRequests(), 0u);
}

TEST_F(FileResolverTest, EntryNotFoundAtACommitIsCachedAsANegativeEntry) {
  ExpectFound(Resolve(Ref("org/model", "main", "config.json")), c2_, "config.json");  // public
  auto missing = Resolve(Ref("org/model", "main", "absent.txt"));
  ASSERT_EQ(missing.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(Header(missing, "X-Error-Code"), "EntryNotFound");
  EXPECT_EQ(Header(missing, "X-Repo-Commit"), c2_);
  EXPECT_EQ(missing.commit, c2_);
  EXPECT_FALSE(missing.from_cache);
  auto record = index_->GetFile(Model("org/model"), c2_, "absent.txt");
  ASSERT_TRUE(record && *record);
  EXPECT_FALSE((*record)->exists);
  EXPECT_FALSE((*record)->digest);

  // At the commit, the negative entry answers without the Hub, as the Hub did.
  hub_->ClearLog();
  auto cached = Resolve(Ref("org/model", c2_, "absent.txt"));
  ASSERT_EQ(cached.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(cached.status, 404u);
  EXPECT_TRUE(cached.from_cache);
  EXPECT_EQ(Header(cached, "X-Error-Code"), "EntryNotFound");
  EXPECT_EQ(Header(cached, "X-Repo-Commit"), c2_);
  EXPECT_EQ(HubRequests(), 0u);
  // Even a request that would need a download URL: there is nothing to get.
  auto needing = Resolve(Ref("org/model", c2_, "absent.txt"), {}, true);
  EXPECT_EQ(needing.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(HubRequests(), 0u);
  // Other commits are not affected: the file exists at none, but each is asked.
  auto other = Resolve(Ref("org/model", c1_, "absent.txt"));
  EXPECT_EQ(other.status, 404u);
  EXPECT_FALSE(other.from_cache);
}

TEST_F(FileResolverTest, ANegativeEntryOfARestrictedRepoIsNotRevealedWithoutAccess) {
  const std::string commit = hub_->Commit("model", "org/private", "main");
  auto owner = Resolve(Ref("org/private", commit, "absent.txt"), Secret("hf_owner"));
  ASSERT_EQ(owner.status, 404u);
  ASSERT_EQ(Header(owner, "X-Error-Code"), "EntryNotFound");
  ASSERT_TRUE(index_->GetFile(Model("org/private"), commit, "absent.txt").value().has_value());

  auto anonymous = Resolve(Ref("org/private", commit, "absent.txt"));
  EXPECT_EQ(anonymous.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(anonymous.status, 401u);
  EXPECT_EQ(Header(anonymous, "X-Error-Code"), "RepoNotFound");
  EXPECT_FALSE(anonymous.from_cache);
  auto user = Resolve(Ref("org/private", commit, "absent.txt"), Secret("hf_user"));
  EXPECT_EQ(user.status, 404u);
  EXPECT_EQ(Header(user, "X-Error-Code"), "RepoNotFound");
}

TEST_F(FileResolverTest, TheHubsRefusalsAreRelayedExactly) {
  struct Case {
    FileRef ref;
    std::string token;
    unsigned status;
    std::string code;
  };
  const Case cases[] = {
      {Ref("org/gated", "main", "config.json"), "", 401, "GatedRepo"},
      {Ref("org/gated", "main", "config.json"), "hf_user", 403, "GatedRepo"},
      {Ref("org/private", "main", "config.json"), "", 401, "RepoNotFound"},
      {Ref("org/private", "main", "config.json"), "hf_user", 404, "RepoNotFound"},
      {Ref("org/nowhere", "main", "config.json"), "", 401, "RepoNotFound"},
      {Ref("org/model", "main", "config.json"), "hf_bogus", 401, ""},
      {Ref("org/model", "no-such-branch", "config.json"), "", 404, "RevisionNotFound"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ref.repo.name + "@" + c.ref.revision + " token=" + c.token);
    const testing::HttpResponse hub = HubHead(c.ref, c.token);
    ASSERT_EQ(hub.status, c.status);
    auto answer = Resolve(c.ref, Secret(c.token));
    ASSERT_EQ(answer.kind, FileAnswer::Kind::kRelay);
    EXPECT_EQ(answer.status, c.status);
    EXPECT_EQ(Header(answer, "X-Error-Code"), c.code);
    EXPECT_EQ(Header(answer, "X-Error-Code"), hub.Header("x-error-code"));
    EXPECT_FALSE(hub.Header("x-error-message").empty());
    EXPECT_EQ(Header(answer, "X-Error-Message"), hub.Header("x-error-message"));
    EXPECT_EQ(answer.message, hub.Header("x-error-message"));
    EXPECT_FALSE(Header(answer, "X-Request-Id").empty());
    EXPECT_TRUE(answer.commit.empty());
    EXPECT_TRUE(answer.download_url.empty());
  }
  // An anonymous refusal marks the repo restricted; nothing else was recorded.
  auto gated = index_->GetAccess(Model("org/gated"));
  ASSERT_TRUE(gated && *gated);
  EXPECT_EQ((*gated)->visibility, store::Visibility::kRestricted);
  EXPECT_FALSE(index_->GetRef(Model("org/gated"), "main").value().has_value());
  EXPECT_FALSE(index_->GetGrant(hmac_->Of(Secret("hf_user")), Model("org/gated"))
                   .value()
                   .has_value());
}

TEST_F(FileResolverTest, AnAnonymousRefusalEndsAPublicFactAtOnce) {
  // org/private was public when last checked (it has since been made private).
  ASSERT_TRUE(access_->RecordSuccess(Model("org/private"), Secret()));
  const std::string commit = hub_->Commit("model", "org/private", "main");
  // The owner's request stored the file.
  ExpectFound(Resolve(Ref("org/private", commit, "config.json"), Secret("hf_owner")), commit,
              "config.json", "org/private");
  hub_->ClearLog();
  // Within public_ttl, anonymous requests are answered from the cache.
  now_ += kPublicTtl - 1;
  EXPECT_TRUE(Resolve(Ref("org/private", commit, "config.json")).from_cache);
  EXPECT_EQ(HubRequests(), 0u);

  // After it, the Hub is asked again and its refusal is relayed...
  now_ += 1;
  auto refused = Resolve(Ref("org/private", commit, "config.json"));
  ASSERT_EQ(refused.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(refused.status, 401u);
  EXPECT_EQ(Header(refused, "X-Error-Code"), "RepoNotFound");
  // ...and remembered: offline, the repo is no longer public.
  offline_resolver_ = Resolver(*client_, /*offline=*/true, seconds(3600));
  hub_->ClearLog();
  auto offline = Resolve(*offline_resolver_, Ref("org/private", commit, "config.json"));
  EXPECT_EQ(offline.kind, FileAnswer::Kind::kUnavailable);
  EXPECT_EQ(offline.status, 503u);
  EXPECT_EQ(HubRequests(), 0u);
}

TEST_F(FileResolverTest, APublicFactIsRecheckedAfterPublicTtl) {
  ExpectFound(Resolve(Ref("org/model", c1_, "config.json")), c1_, "config.json");
  hub_->ClearLog();
  now_ += kPublicTtl - 1;
  EXPECT_TRUE(Resolve(Ref("org/model", c1_, "config.json")).from_cache);
  EXPECT_EQ(HubRequests(), 0u);
  now_ += 1;
  auto rechecked = Resolve(Ref("org/model", c1_, "config.json"));
  ExpectFound(rechecked, c1_, "config.json");
  EXPECT_FALSE(rechecked.from_cache);
  EXPECT_GT(HubRequests(), 0u);
  // The Hub said yes again: a new period starts now.
  auto fact = index_->GetAccess(Model("org/model"));
  ASSERT_TRUE(fact && *fact);
  EXPECT_EQ((*fact)->checked_at, now_);
}

TEST_F(FileResolverTest, AGrantIsTrustedForGrantTtlThenCheckedWithTheHubAgain) {
  const std::string commit = hub_->Commit("model", "org/gated", "main");
  const FileRef ref = Ref("org/gated", commit, "config.json");
  const Secret approved("hf_approved");
  ExpectFound(Resolve(ref, approved), commit, "config.json", "org/gated");
  auto grant = index_->GetGrant(hmac_->Of(approved), Model("org/gated"));
  ASSERT_TRUE(grant && *grant);
  EXPECT_EQ(**grant, now_ + kGrantTtl);
  // A token's success says nothing about anonymous access.
  EXPECT_FALSE(index_->GetAccess(Model("org/gated")).value().has_value());

  hub_->ClearLog();
  now_ += kGrantTtl - 1;
  EXPECT_TRUE(Resolve(ref, approved).from_cache);
  EXPECT_EQ(HubRequests(), 0u);
  // Another token, or none, gets no benefit from that grant.
  EXPECT_EQ(Resolve(ref, Secret("hf_user")).status, 403u);
  EXPECT_EQ(Resolve(ref).status, 401u);

  hub_->ClearLog();
  now_ += 1;
  auto rechecked = Resolve(ref, approved);
  ExpectFound(rechecked, commit, "config.json", "org/gated");
  EXPECT_FALSE(rechecked.from_cache);
  EXPECT_GT(HubRequests(), 0u);
}

// The Hub granted hf_user access to org/gated once (recorded as a grant), and
// has since refused it. Once the grant expires the refusal reaches the
// client exactly; and from then on no offline extension serves that token.
TEST_F(FileResolverTest, ARevokedTokenIsRefusedOnRecheckAndStaysRefusedOffline) {
  AccessOptions options;
  options.public_ttl = seconds(kPublicTtl);
  options.grant_ttl = seconds(kGrantTtl);
  options.offline_grant_ttl = std::chrono::hours(24);
  access_->SetOptions(options);
  const std::string commit = hub_->Commit("model", "org/gated", "main");
  const FileRef ref = Ref("org/gated", commit, "config.json");
  const Secret revoked("hf_user");
  ExpectFound(Resolve(ref, Secret("hf_approved")), commit, "config.json", "org/gated");
  ASSERT_TRUE(access_->RecordSuccess(Model("org/gated"), revoked));

  hub_->ClearLog();
  EXPECT_TRUE(Resolve(ref, revoked).from_cache);  // within grant_ttl: trusted
  EXPECT_EQ(HubRequests(), 0u);

  now_ += kGrantTtl;
  const testing::HttpResponse hub = HubHead(ref, revoked.Reveal());
  auto refused = Resolve(ref, revoked);
  ASSERT_EQ(refused.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(refused.status, 403u);
  EXPECT_EQ(Header(refused, "X-Error-Code"), "GatedRepo");
  EXPECT_EQ(Header(refused, "X-Error-Message"), hub.Header("x-error-message"));

  // Offline with a day's extension: the approved token is served, the
  // refused one is not.
  offline_resolver_ = Resolver(*client_, /*offline=*/true, seconds(3600));
  hub_->ClearLog();
  ExpectFound(Resolve(*offline_resolver_, ref, Secret("hf_approved")), commit, "config.json",
              "org/gated");
  auto offline = Resolve(*offline_resolver_, ref, revoked);
  EXPECT_EQ(offline.kind, FileAnswer::Kind::kUnavailable);
  EXPECT_EQ(offline.status, 503u);
  EXPECT_EQ(HubRequests(), 0u);
}

TEST_F(FileResolverTest, APrivateRepoThatNoLongerExistsForATokenEndsItsGrant) {
  // The Hub answers a token that may not see a private repo with 404
  // RepoNotFound, which is a refusal too.
  AccessOptions options;
  options.grant_ttl = seconds(kGrantTtl);
  options.offline_grant_ttl = std::chrono::hours(24);
  access_->SetOptions(options);
  const std::string commit = hub_->Commit("model", "org/private", "main");
  const FileRef ref = Ref("org/private", commit, "config.json");
  ExpectFound(Resolve(ref, Secret("hf_owner")), commit, "config.json", "org/private");
  const Secret former("hf_user");
  ASSERT_TRUE(access_->RecordSuccess(Model("org/private"), former));
  now_ += kGrantTtl;
  auto refused = Resolve(ref, former);
  EXPECT_EQ(refused.status, 404u);
  EXPECT_EQ(Header(refused, "X-Error-Code"), "RepoNotFound");
  EXPECT_FALSE(access_->Allows(Model("org/private"), former, /*offline=*/true));
  EXPECT_TRUE(access_->Allows(Model("org/private"), Secret("hf_owner"), /*offline=*/true));
}

TEST_F(FileResolverTest, OfflineStaleRefsAreUsedAndWhatIsNotCachedIsUnavailable) {
  ExpectFound(Resolve(Ref("org/model", "main", "config.json")), c2_, "config.json");
  ExpectFound(Resolve(Ref("org/gated", "main", "config.json"), Secret("hf_approved")),
              hub_->Commit("model", "org/gated", "main"), "config.json", "org/gated");
  ASSERT_EQ(Resolve(Ref("org/model", "main", "absent.txt")).status, 404u);
  // The ref was confirmed a day ago.
  ASSERT_TRUE(index_->PutRef(Model("org/model"), "main",
                             {.commit = c2_, .fetched_at = WallSeconds() - 86400}));
  offline_resolver_ = Resolver(*client_, /*offline=*/true, seconds(30));
  EXPECT_TRUE(offline_resolver_->offline());
  hub_->ClearLog();

  auto stale = Resolve(*offline_resolver_, Ref("org/model", "main", "config.json"));
  ExpectFound(stale, c2_, "config.json");
  EXPECT_TRUE(stale.from_cache);
  EXPECT_TRUE(stale.stale);
  auto pinned = Resolve(*offline_resolver_, Ref("org/model", c2_, "config.json"));
  ExpectFound(pinned, c2_, "config.json");
  EXPECT_FALSE(pinned.stale);
  // Offline, a request that needs a download URL gets what is cached.
  EXPECT_EQ(Resolve(*offline_resolver_, Ref("org/model", c2_, "config.json"), {}, true).kind,
            FileAnswer::Kind::kFound);

  auto negative = Resolve(*offline_resolver_, Ref("org/model", "main", "absent.txt"));
  EXPECT_EQ(negative.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(negative.status, 404u);
  EXPECT_EQ(Header(negative, "X-Error-Code"), "EntryNotFound");

  // Not cached: a file, a revision, a repo, a token's access.
  for (const auto& [ref, token] : std::vector<std::pair<FileRef, std::string>>{
           {Ref("org/model", "main", "model.safetensors"), ""},
           {Ref("org/model", "v1.0", "config.json"), ""},
           {Ref("org/model", c1_, "config.json"), ""},
           {Ref("org/other", "main", "config.json"), ""},
           {Ref("org/gated", "main", "config.json"), ""},
           {Ref("org/gated", "main", "config.json"), "hf_user"},
       }) {
    SCOPED_TRACE(ref.repo.name + "@" + ref.revision + "/" + ref.path + " " + token);
    auto answer = Resolve(*offline_resolver_, ref, Secret(token));
    EXPECT_EQ(answer.kind, FileAnswer::Kind::kUnavailable);
    EXPECT_EQ(answer.status, 503u);
    EXPECT_NE(answer.message.find("offline"), std::string::npos) << answer.message;
  }
  EXPECT_EQ(HubRequests(), 0u);
}

TEST_F(FileResolverTest, AnUnreachableHubIsTreatedAsOfflineForAWhile) {
  ExpectFound(Resolve(Ref("org/model", "main", "config.json")), c2_, "config.json");
  // A port nobody listens on.
  std::uint16_t closed = 0;
  {
    net::io_context ioc;
    net::ip::tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
    closed = acceptor.local_endpoint().port();
  }
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(closed);
  auto unreachable_client = Client(nowhere);
  ASSERT_TRUE(unreachable_client);
  offline_resolver_ = Resolver(*unreachable_client, /*offline=*/false, seconds(0), nowhere);
  EXPECT_FALSE(offline_resolver_->offline());

  auto stale = Resolve(*offline_resolver_, Ref("org/model", "main", "config.json"));
  ExpectFound(stale, c2_, "config.json");
  EXPECT_TRUE(stale.stale);
  EXPECT_TRUE(offline_resolver_->offline());
  auto missing = Resolve(*offline_resolver_, Ref("org/model", "main", "model.safetensors"));
  EXPECT_EQ(missing.kind, FileAnswer::Kind::kUnavailable);
  EXPECT_TRUE(missing.status == 502u || missing.status == 503u) << missing.status;
  offline_resolver_.reset();
}

TEST_F(FileResolverTest, AHubInTroubleIsAnsweredFromTheCacheOrRelayed) {
  ExpectFound(Resolve(Ref("org/model", "main", "config.json")), c2_, "config.json");
  resolver_->SetCacheOptions({.ref_ttl = seconds(0)});
  hub_->AddFault({.path_contains = "/resolve/", .fail_first = -1, .fail_status = 503});
  auto cached = Resolve(Ref("org/model", "main", "config.json"));
  ExpectFound(cached, c2_, "config.json");
  EXPECT_TRUE(cached.stale);
  auto uncached = Resolve(Ref("org/model", "main", "model.safetensors"));
  EXPECT_EQ(uncached.kind, FileAnswer::Kind::kRelay);
  EXPECT_EQ(uncached.status, 503u);
}

}  // namespace
}  // namespace hubcache::proxy
