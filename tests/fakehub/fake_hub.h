// FakeHub: a faithful fake of the Hugging Face Hub for tests and benchmarks.
//
// It serves the repositories of a fixture (TOML; format in
// tests/fakehub/README.md) over real sockets on 127.0.0.1, on two listeners:
//   - the hub listener: resolve (307 relative redirect for regular files,
//     302 absolute signed redirect to the CDN listener for LFS files),
//     /api/resolve-cache, the JSON API (repo info, paginated tree,
//     paths-info, refs, whoami-v2, xet-read-token, commits), the Hub's
//     error answers (X-Error-Code / X-Error-Message), and control endpoints
//     under /_fake/ for scripts;
//   - the CDN listener: /xet-bridge-us/<id>/<sha256>?<signature>, with exact
//     Range semantics and expiring signatures.
// Everything follows /work/shared/HUB_PROTOCOL.md (§1, §2, §3, §5, §6).
// Content is deterministic: inline text or generated from (seed, size), so a
// 1 GiB file costs no memory. Knobs: injected faults, bandwidth limits,
// added latency, optional TLS with a throwaway CA, Xet hints, and a log of
// every request.
//
// Thread safety: every member function may be called from any thread while
// the servers run. Start() and the destructor are the only blocking calls;
// the destructor closes every connection and joins the server threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hubcache::fakehub {

// A fault applied to matching requests on either listener. Control requests
// (/_fake/...) are never faulted. With designated initializers, name
// path_contains first (GCC 12 warns when the first member is skipped):
//   hub->AddFault({.path_contains = "", .stall = true});
struct Fault {
  // "" matches every request; otherwise a substring of the request path (no
  // query), matched against the raw path and its percent-decoded form.
  std::string path_contains;
  // Answer `fail_status` (with a JSON error body) to the first K matching
  // requests instead of serving them; a negative K fails every one.
  int fail_first = 0;
  // 5xx or 429; a 429 carries Retry-After: 1.
  unsigned fail_status = 503;
  // How long a failed answer waits before its head (an upstream that takes
  // its time to refuse: a download in flight that fails before any byte).
  std::chrono::milliseconds fail_delay{0};
  // The body faults below apply only to responses that carry file content
  // (resolve-cache, raw and CDN answers, 200 or 206), to the next
  // `drop_times` such responses that the fault can affect (a negative count:
  // all of them), after `fail_first` has run out.
  //
  // >= 0: close the connection (orderly FIN) after this many body bytes; a
  // body not longer than that is unaffected.
  std::int64_t drop_after_bytes = -1;
  int drop_times = 1;
  // Send the response head, then no body at all, keeping the socket open
  // until the client or the FakeHub closes it.
  bool stall = false;
  // Flip the lowest bit of the body byte at `flip_offset`, an offset in the
  // file (a 206 that does not cover it is unaffected).
  bool flip_byte = false;
  std::uint64_t flip_offset = 0;
  // Announce Content-Length N, send N-1 bytes, then close.
  bool short_body = false;
  // A CDN that ignores Range: a 206 becomes a 200 with the whole file.
  bool ignore_range = false;
  // Content-Encoding: gzip on the answer, its body the gzip stream of the
  // bytes it would have carried (whatever Accept-Encoding asked for).
  bool gzip = false;
  // Announce Content-Length N + length_delta for a body of N bytes: a
  // positive delta sends the N bytes and closes (the client waits for bytes
  // that never come); a negative one sends all N bytes on a connection that
  // stays open, so the rest is read as the start of the next answer.
  std::int64_t length_delta = 0;
};

// One answered request. Entries are in the order the responses started: an
// entry is in the log before the client receives the first byte of its
// response, with the body bytes planned; the count is corrected if the
// body then stops short (client gone, drop fault, shutdown). Control
// requests are not logged.
struct LogEntry {
  std::string listener;  // "hub" or "cdn"
  std::string method;
  std::string target;  // the raw (still encoded) path, no query
  unsigned status = 0;
  std::uint64_t body_bytes_sent = 0;
  std::string range;  // the Range request header, or ""
  bool had_authorization = false;
};

struct Options {
  // Path of a fixture file; when empty, `fixture_text` is parsed; when both
  // are empty, the default fixture tests/fakehub/fixture.toml is loaded.
  std::string fixture;
  std::string fixture_text;
  // Serve https on both listeners, with a throwaway CA (see ca_file()).
  bool tls = false;
  // Bandwidth limits on response bodies, bytes per second (0 = none): per
  // connection, and over all connections together.
  std::uint64_t conn_bytes_per_sec = 0;
  std::uint64_t total_bytes_per_sec = 0;
  // Added before each response head.
  std::chrono::milliseconds latency{0};
  // Add the Hub's Xet hints: X-Xet-Hash and Link rel="xet-auth" /
  // rel="xet-reconstruction-info" on LFS resolves, xetHash in tree and
  // paths-info JSON, the application/vnd.xet-fileinfo+json answer.
  bool xet = false;
  // Lifetime of the CDN's signed URLs; an expired one gets 403. Zero makes
  // every signed URL expired on arrival.
  std::chrono::seconds signed_url_ttl{3600};
  int threads = 2;
  // Ports to bind on 127.0.0.1; 0 picks a free one.
  std::uint16_t hub_port = 0;
  std::uint16_t cdn_port = 0;
  // Called when each logged response has ended, with its final entry, from a
  // server thread (the binary's access log). Must be thread-safe and quick.
  std::function<void(const LogEntry&)> on_request;
};

class FakeHub {
 public:
  // Loads the fixture, binds 127.0.0.1 for both listeners and starts
  // serving. Throws std::runtime_error with a clear message on a bad fixture
  // or a failed bind. Loading hashes every file (about 0.2 s per 256 MiB).
  static std::unique_ptr<FakeHub> Start(Options options);
  // Stops accepting, closes every connection (stalled ones included) and
  // joins the server threads.
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT": the hub listener.
  std::string url() const;
  // The CDN listener, same form.
  std::string cdn_url() const;
  std::uint16_t port() const;
  std::uint16_t cdn_port() const;
  // Path of the throwaway CA's PEM file (tls only; "" otherwise). It lives
  // until the FakeHub is destroyed.
  std::string ca_file() const;

  void AddFault(Fault fault);  // throws std::invalid_argument on a bad status
  void ClearFaults();
  // The installed faults with their remaining counts.
  std::vector<Fault> Faults() const;
  void SetBandwidth(std::uint64_t conn_bytes_per_sec, std::uint64_t total_bytes_per_sec);
  void SetLatency(std::chrono::milliseconds latency);
  // Applies to signed URLs issued from now on.
  void SetSignedUrlTtl(std::chrono::seconds ttl);

  std::vector<LogEntry> Log() const;
  void ClearLog();
  // Sum of body_bytes_sent over the log entries whose target contains
  // `path_contains` (raw or decoded); for coalescing tests.
  std::uint64_t BodyBytesSent(std::string_view path_contains = "") const;
  // Number of logged requests whose target contains `path_contains`.
  std::size_t RequestCount(std::string_view path_contains = "") const;

  // Moves (or creates) a branch to another commit (sha or fixture name) of
  // the same repo. Also reachable as POST
  // /_fake/move?type=model&repo=...&branch=main&commit=<sha>. Throws
  // std::invalid_argument for an unknown repo or commit.
  void MoveBranch(std::string_view type, std::string_view repo, std::string_view branch,
                  std::string_view commit);

  // Changes who may read a repo from now on, as its owners would on the Hub:
  // make it private (true) or public again, grant a fixture token access (a
  // private repo's member, a gated repo's approval) or revoke it, delete it
  // (every route then answers as for a repo that never existed; its files
  // stay known to the methods below). Throw std::invalid_argument for an
  // unknown repo or a token the fixture does not know.
  void SetPrivate(std::string_view type, std::string_view repo, bool is_private);
  void SetTokenAccess(std::string_view type, std::string_view repo, std::string_view token,
                      bool granted);
  void DeleteRepo(std::string_view type, std::string_view repo);
  // Undoes the three above: every repo as the fixture has it.
  void ResetAccess();

  // Expected bytes and digests, so tests can compare. `type` is
  // model|dataset|space; `commit` may be any revision. Throw
  // std::invalid_argument for an unknown repo, revision or file.
  // The file's bytes [offset, offset + length), clamped to its size.
  std::string FileContent(std::string_view type, std::string_view repo, std::string_view commit,
                          std::string_view path, std::uint64_t offset = 0,
                          std::uint64_t length = UINT64_MAX) const;
  // The sha256 (LFS) or git blob sha1 (regular), hex without quotes.
  std::string Etag(std::string_view type, std::string_view repo, std::string_view commit,
                   std::string_view path) const;
  std::uint64_t FileSize(std::string_view type, std::string_view repo, std::string_view commit,
                         std::string_view path) const;
  // Resolves a branch, tag, refs/... name or commit sha to the commit sha.
  std::string Commit(std::string_view type, std::string_view repo, std::string_view revision) const;

 private:
  struct Impl;  // fake_hub.cc
  explicit FakeHub(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Path of the default fixture shipped with the sources.
std::string DefaultFixture();

}  // namespace hubcache::fakehub
