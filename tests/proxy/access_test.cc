#include "proxy/access.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace hubcache::proxy {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr std::int64_t kPublicTtl = 300;
constexpr std::int64_t kGrantTtl = 600;

const store::RepoId kRepo{store::RepoType::kModel, "org/gated"};
const store::RepoId kOtherRepo{store::RepoType::kModel, "org/other"};
const store::RepoId kSameNameDataset{store::RepoType::kDataset, "org/gated"};

AccessOptions Options(std::int64_t offline_grant_ttl = 0) {
  AccessOptions options;
  options.public_ttl = seconds(kPublicTtl);
  options.grant_ttl = seconds(kGrantTtl);
  options.offline_grant_ttl = seconds(offline_grant_ttl);
  return options;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A policy over a real index in a temporary directory, on a clock the test
// moves by hand.
class AccessPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto index = store::Index::Open(dir_ / "index");
    ASSERT_TRUE(index) << index.error().message();
    index_ = std::move(*index);
    auto hmac = store::TokenHmac::LoadOrCreate(dir_.path());
    ASSERT_TRUE(hmac) << hmac.error().message();
    hmac_.emplace(*hmac);
    policy_ = std::make_unique<AccessPolicy>(*index_, *hmac_, Options(), [this] { return now_; });
  }
  void TearDown() override {
    policy_.reset();
    index_.reset();
  }

  bool Online(const store::RepoId& repo, const Secret& token) const {
    return policy_->Allows(repo, token, /*offline=*/false);
  }
  bool Offline(const store::RepoId& repo, const Secret& token) const {
    return policy_->Allows(repo, token, /*offline=*/true);
  }

  testing::TempDir dir_{"hubcache-access-test"};
  std::unique_ptr<store::Index> index_;
  std::optional<store::TokenHmac> hmac_;
  std::int64_t now_ = 1'700'000'000;
  std::unique_ptr<AccessPolicy> policy_;
  const Secret anonymous_;
  const Secret alice_{"hf_alice_token"};
  const Secret bob_{"hf_bob_token"};
};

TEST_F(AccessPolicyTest, AnUnknownRepoIsReadableByNobody) {
  for (const Secret* who : {&anonymous_, &alice_}) {
    EXPECT_FALSE(Online(kRepo, *who));
    EXPECT_FALSE(Offline(kRepo, *who));
  }
}

TEST_F(AccessPolicyTest, AnAnonymousSuccessMakesTheRepoPublicForPublicTtl) {
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, anonymous_));
  auto fact = index_->GetAccess(kRepo);
  ASSERT_TRUE(fact && *fact);
  EXPECT_EQ((*fact)->visibility, store::Visibility::kPublic);
  EXPECT_EQ((*fact)->checked_at, now_);

  EXPECT_TRUE(Online(kRepo, anonymous_));
  EXPECT_TRUE(Online(kRepo, alice_));  // public: any token too
  EXPECT_FALSE(Online(kOtherRepo, anonymous_));
  EXPECT_FALSE(Online(kSameNameDataset, anonymous_));  // the type is part of the name

  now_ += kPublicTtl - 1;
  EXPECT_TRUE(Online(kRepo, anonymous_));
  now_ += 1;  // public_ttl after the check: ask the Hub again
  EXPECT_FALSE(Online(kRepo, anonymous_));
  EXPECT_FALSE(Online(kRepo, alice_));
  // Offline, a public fact never expires.
  EXPECT_TRUE(Offline(kRepo, anonymous_));
  now_ += 10 * 365 * 86400;
  EXPECT_TRUE(Offline(kRepo, anonymous_));

  // A new success starts a new period.
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, anonymous_));
  EXPECT_TRUE(Online(kRepo, anonymous_));
}

TEST_F(AccessPolicyTest, AnAnonymousRefusalEndsPublicAccessAtOnceOnlineAndOffline) {
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, anonymous_));
  ASSERT_TRUE(Online(kRepo, anonymous_));
  ASSERT_TRUE(policy_->RecordRefusal(kRepo, anonymous_));
  auto fact = index_->GetAccess(kRepo);
  ASSERT_TRUE(fact && *fact);
  EXPECT_EQ((*fact)->visibility, store::Visibility::kRestricted);
  EXPECT_FALSE(Online(kRepo, anonymous_));
  EXPECT_FALSE(Offline(kRepo, anonymous_));
  EXPECT_FALSE(Online(kRepo, alice_));
}

TEST_F(AccessPolicyTest, AGrantIsForOneTokenAndOneRepoAndLastsGrantTtl) {
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, alice_));
  auto grant = index_->GetGrant(hmac_->Of(alice_), kRepo);
  ASSERT_TRUE(grant && *grant);
  EXPECT_EQ(**grant, now_ + kGrantTtl);
  // A grant says nothing about the repo being public.
  auto fact = index_->GetAccess(kRepo);
  ASSERT_TRUE(fact);
  EXPECT_FALSE(*fact);

  EXPECT_TRUE(Online(kRepo, alice_));
  EXPECT_FALSE(Online(kRepo, bob_));
  EXPECT_FALSE(Online(kRepo, anonymous_));
  EXPECT_FALSE(Online(kOtherRepo, alice_));
  EXPECT_FALSE(Online(kSameNameDataset, alice_));
  // A token that differs only by a suffix is another token.
  EXPECT_FALSE(Online(kRepo, Secret(alice_.Reveal() + "x")));

  now_ += kGrantTtl - 1;
  EXPECT_TRUE(Online(kRepo, alice_));
  EXPECT_TRUE(Offline(kRepo, alice_));  // unexpired: honoured offline as well
  now_ += 1;  // grant_ttl after the Hub's answer: ask the Hub again
  EXPECT_FALSE(Online(kRepo, alice_));
  EXPECT_FALSE(Offline(kRepo, alice_));  // no offline extension configured
}

TEST_F(AccessPolicyTest, OfflineAnExpiredGrantCountsOnlyWithinTheOperatorsExtension) {
  constexpr std::int64_t kExtension = 3600;
  policy_->SetOptions(Options(kExtension));
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, alice_));
  now_ += kGrantTtl;  // expired
  EXPECT_FALSE(Online(kRepo, alice_));  // online, the Hub must be asked
  EXPECT_TRUE(Offline(kRepo, alice_));
  EXPECT_FALSE(Offline(kRepo, bob_));
  EXPECT_FALSE(Offline(kRepo, anonymous_));
  now_ += kExtension - 1;
  EXPECT_TRUE(Offline(kRepo, alice_));
  now_ += 1;
  EXPECT_FALSE(Offline(kRepo, alice_));

  // Turning the extension off applies to the next check.
  now_ -= 10;
  EXPECT_TRUE(Offline(kRepo, alice_));
  policy_->SetOptions(Options(0));
  EXPECT_FALSE(Offline(kRepo, alice_));
}

TEST_F(AccessPolicyTest, ANewPublicTtlAppliesToTheNextCheck) {
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, anonymous_));
  now_ += 60;
  EXPECT_TRUE(Online(kRepo, anonymous_));
  AccessOptions shorter = Options();
  shorter.public_ttl = seconds(60);
  policy_->SetOptions(shorter);
  EXPECT_FALSE(Online(kRepo, anonymous_));
}

// The Hub refused a token that held a grant (access revoked, token deleted):
// hubcache must not keep serving it from that grant, not even offline with
// an extension (which is for outages, not for overruling the Hub).
TEST_F(AccessPolicyTest, ARefusalEndsTheTokensGrantAtOnceEvenOffline) {
  policy_->SetOptions(Options(/*offline_grant_ttl=*/86400));
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, alice_));
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, bob_));
  ASSERT_TRUE(policy_->RecordSuccess(kOtherRepo, alice_));
  now_ += kGrantTtl + 10;
  ASSERT_TRUE(Offline(kRepo, alice_));

  ASSERT_TRUE(policy_->RecordRefusal(kRepo, alice_));
  EXPECT_FALSE(Online(kRepo, alice_));
  EXPECT_FALSE(Offline(kRepo, alice_));
  // Only that token, only that repo.
  EXPECT_TRUE(Offline(kRepo, bob_));
  EXPECT_TRUE(Offline(kOtherRepo, alice_));
  // A token's refusal says nothing about anonymous access.
  EXPECT_FALSE(index_->GetAccess(kRepo).value().has_value());

  // An unexpired grant ends too.
  now_ -= kGrantTtl;
  ASSERT_TRUE(Online(kRepo, bob_));
  ASSERT_TRUE(policy_->RecordRefusal(kRepo, bob_));
  EXPECT_FALSE(Online(kRepo, bob_));
  EXPECT_FALSE(Offline(kRepo, bob_));

  // The Hub saying yes again restores it.
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, alice_));
  EXPECT_TRUE(Online(kRepo, alice_));
}

TEST_F(AccessPolicyTest, ARefusedTokenWithoutAGrantLeavesNoTrace) {
  // Clients can send any string as a token; refusals must not grow the index.
  ASSERT_TRUE(policy_->RecordRefusal(kRepo, bob_));
  EXPECT_FALSE(index_->GetGrant(hmac_->Of(bob_), kRepo).value().has_value());
  EXPECT_FALSE(Offline(kRepo, bob_));
}

TEST_F(AccessPolicyTest, TokensAreStoredOnlyAsTheirHmac) {
  // Long and distinctive, so that finding it by chance is impossible.
  const Secret token("hf_TheTokenMustNeverReachTheDisk_0123456789abcdef");
  ASSERT_TRUE(policy_->RecordSuccess(kRepo, token));
  ASSERT_TRUE(policy_->RecordSuccess(kOtherRepo, token));
  ASSERT_TRUE(policy_->RecordRefusal(kOtherRepo, token));
  // Index writes return once durable: everything is on disk now.
  const store::TokenId id = hmac_->Of(token);
  const std::string id_bytes(reinterpret_cast<const char*>(id.data()), id.size());

  bool found_id = false;
  for (const auto& entry : fs::recursive_directory_iterator(dir_.path())) {
    if (!entry.is_regular_file()) continue;
    const std::string bytes = ReadFile(entry.path());
    EXPECT_EQ(bytes.find(token.Reveal()), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find(token.Reveal().substr(3)), std::string::npos) << entry.path();
    if (bytes.find(id_bytes) != std::string::npos) found_id = true;
  }
  // The grant is on disk, under the HMAC.
  EXPECT_TRUE(found_id);
  // Another install (another secret) derives another id from the same token.
  testing::TempDir other{"hubcache-access-test-other"};
  auto other_hmac = store::TokenHmac::LoadOrCreate(other.path());
  ASSERT_TRUE(other_hmac);
  EXPECT_NE(other_hmac->Of(token), id);
  EXPECT_EQ(hmac_->Of(token), id);  // and the same install the same one
}

TEST_F(AccessPolicyTest, WithoutAnInjectedClockTheSystemClockIsUsed) {
  AccessPolicy policy(*index_, *hmac_, Options());
  const std::int64_t before = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  ASSERT_TRUE(policy.RecordSuccess(kRepo, alice_));
  auto grant = index_->GetGrant(hmac_->Of(alice_), kRepo);
  ASSERT_TRUE(grant && *grant);
  EXPECT_GE(**grant, before + kGrantTtl);
  EXPECT_LE(**grant, before + kGrantTtl + 60);
  EXPECT_TRUE(policy.Allows(kRepo, alice_, false));
}

}  // namespace
}  // namespace hubcache::proxy
