// HubService: the fake Hub's main listener, answering as huggingface.co
// does (HUB_PROTOCOL.md): file resolves, /api/resolve-cache, the JSON API,
// the error contract, and the /_fake/ control endpoints.
//
// Routing works on the raw (still percent-encoded) path, as the real Hub's
// clients require (§1.3): a revision segment is decoded after splitting, so
// `refs%2Fpr%2F1` is one revision; file paths are decoded as UTF-8 with '+'
// kept. Access is decided per request from its own Authorization header
// (§3.2): an unknown token is refused everywhere; private and missing repos
// look the same; gated repos want an approved token. The same repo, token
// and revision get the same error on HEAD, ranged GET, repo info and every
// other API route.
//
// The route implementations are split over hub_service.cc (routing, access,
// resolve), hub_api.cc (JSON documents) and control.cc (/_fake/).
//
// Thread safety: Handle() is reentrant; the Model, Knobs and Signer must
// outlive the service. SetHubUrl() only before serving.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tests/fakehub/knobs.h"
#include "tests/fakehub/listener.h"
#include "tests/fakehub/model.h"
#include "tests/fakehub/signer.h"

namespace hubcache::fakehub {

struct HubConfig {
  bool tls = false;
  bool xet = false;
  // Used for absolute URLs when a request has no Host header.
  std::string hub_url;
  // Where LFS resolves redirect to.
  std::string cdn_url;
};

class HubService final : public Service {
 public:
  HubService(Model& model, Knobs& knobs, const Signer& signer, HubConfig config)
      : model_(model), knobs_(knobs), signer_(signer), config_(std::move(config)) {}

  Reply Handle(const Request& request) override;
  void SetHubUrl(std::string url) { config_.hub_url = std::move(url); }

 private:
  using Segments = std::span<const std::string_view>;

  Reply Route(const Request& request);
  Reply Api(const Request& request, Segments segments, const Params& query);
  Reply Control(const Request& request, Segments segments, const Params& query);

  // Authorizes the request for the repo; on refusal returns nullptr and
  // sets `error` to the Hub's answer.
  const Repo* Authorize(const Request& request, RepoType type, const std::string& id,
                        Reply& error) const;
  // Splits the repo id off the front of `segments`: returns the decoded id
  // and how many segments it used (1 for legacy ids such as "gpt2").
  std::pair<std::string, std::size_t> MatchRepo(RepoType type, Segments segments) const;
  // Splits a revision off the front of `segments` (decoded after splitting;
  // an unencoded refs/pr/N or refs/convert/X or known branch with slashes is
  // joined back). Returns the revision and the segments used.
  // `join_refs` (tree only) also joins unencoded branch names with '/'.
  std::pair<std::string, std::size_t> MatchRevision(const Repo& repo, Segments segments,
                                                    bool join_refs) const;
  // When `id` is an earlier name of a repo: the Hub's 307 to the same
  // request under the repo's id (relative Location, query kept), or the
  // error the repo's own id would get for a private repo the request may not
  // see. `id_segments` are the raw path segments that spell `id`.
  std::optional<Reply> Renamed(const Request& request, RepoType type, const std::string& id,
                               Segments id_segments) const;
  // "http(s)://host:port" of this request, from its Host header.
  std::string HostUrl(const Request& request) const;

  Reply Resolve(const Request& request, RepoType type, const std::string& repo_id, bool raw,
                Segments rest);
  Reply ResolveCache(const Request& request, Segments segments);
  Reply Redirect(const Request& request, const Repo& repo, const Commit& commit,
                 std::string_view revision, const File& file);
  Reply XetFileInfo(const Request& request, const Repo& repo, const Commit& commit,
                    const File& file);

  // hub_api.cc
  Reply RepoInfo(const Repo& repo, const Commit& commit, const Params& query) const;
  Reply Tree(const Request& request, const Commit& commit, std::string_view dir,
             const Params& query) const;
  Reply PathsInfo(const Request& request, const Commit& commit) const;
  Reply RefsDoc(const Repo& repo, const Params& query) const;
  Reply WhoAmI(const Request& request) const;
  Reply XetReadToken(const Repo& repo, const Commit& commit) const;
  Reply Commits(const Commit& commit) const;

  Model& model_;
  Knobs& knobs_;
  const Signer& signer_;
  HubConfig config_;
  std::atomic<std::uint64_t> request_counter_{0};
};

// The token of an "Authorization: Bearer hf_..." header; "" when absent.
// nullopt when the header is present but not a bearer token.
std::optional<std::string> BearerToken(const Request& request);

// Decodes each raw segment and joins them with '/'. nullopt on a malformed
// escape.
std::optional<std::string> DecodeJoined(std::span<const std::string_view> segments);

}  // namespace hubcache::fakehub
