// How hubcache reads the Hub's answers to a resolve HEAD (the protocol is in
// proxy/resolve.h): the decisions without the I/O, so that whatever a lying
// or hostile upstream sends in its headers can be fuzzed
// (tests/fuzz/resolve_head_fuzz.cc). No Asio here.
//
// What must hold whatever the headers say: the token goes to a second HEAD
// only on the origin of the first; a file is only "found" with a commit of
// 40 lower-case hex, a non-empty etag and a size that is a whole number.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hubcache::proxy {

// The value of a response header, or "" (names are matched case-insensitively).
using HeaderLookup = std::function<std::string(std::string_view name)>;

enum class HeadStep {
  kFound,     // the file: commit, etag, lfs, size; its bytes are at `url`
  kAskAgain,  // a redirect on the same origin: HEAD `url` (ReadSecondHead)
  kMoved,     // a renamed repo: `url` is the Location as the Hub sent it
  kRelay,     // a refusal or any other answer, to relay as it is
};

struct HeadReading {
  HeadStep step = HeadStep::kRelay;
  std::string commit;  // X-Repo-Commit (kFound: 40 lower-case hex)
  std::string etag;    // content digest hex: sha256 (LFS) or git blob sha1
  bool lfs = false;
  std::uint64_t size = 0;
  std::string url;
};

// The answer (`status`, `header`) to the first HEAD, of `resolve_url` (an
// absolute URL). Errors: Errc::kBadRedirect for a 3xx without a usable
// Location; core::Errc::kCorrupt for a file without commit, etag or size.
Result<HeadReading> ReadResolveHead(std::string_view resolve_url, unsigned status,
                                    const HeaderLookup& header);

// The answer to the second HEAD, of the URL a kAskAgain named; `commit` is
// the first answer's (the second may not repeat it). Errors as above.
Result<HeadReading> ReadSecondHead(std::string_view url, std::string_view commit,
                                   unsigned status, const HeaderLookup& header);

// Strips `W/` and quotes from an ETag value.
std::string UnquoteEtag(std::string_view etag);

}  // namespace hubcache::proxy
