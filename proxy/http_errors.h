// The one place that decides which HTTP status hubcache answers with when it
// cannot give a client what the Hub would (STYLE.md §5). Refusals the Hub
// made itself (401, 403, 404 with X-Error-Code) are relayed as the Hub gave
// them and never come through here.
//
//   504  the Hub did not answer in time
//   503  hubcache cannot answer now, though the Hub is not at fault: it is
//        offline and has not cached the answer, no source has the blob, or
//        a download it holds cannot be read
//   502  everything else: the Hub could not be reached, or answered with
//        something hubcache cannot use (no commit/etag/size, a redirect away
//        from the Hub, bytes that do not match their digest)
//
// Clients retry 502/503/504 the same way (huggingface_hub backs off and
// resumes), so the distinction is for people reading logs and dashboards.
// Pure function, thread-safe.
#pragma once

#include "core/result.h"

namespace hubcache::proxy {

unsigned HttpStatusFor(const ErrorCode& ec);

}  // namespace hubcache::proxy
