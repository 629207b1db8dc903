// SendBlob: answers a file GET/HEAD with a blob's bytes, from the store or
// from a download in progress (DESIGN.md "Request flow" steps 5-6).
//
// The caller prepares the header fields (ETag, X-Repo-Commit, X-Cache...);
// SendBlob sets status and framing from the Range request (HUB_PROTOCOL.md
// §8.2): 200 with the whole body, 206 with one range, 206
// multipart/byteranges with several, 416 with `bytes */N`. Bodies go out
// with sendfile(2) straight from the file (zero copy). When the body comes
// from a Fetch, each byte but the answer's last is sent as soon as the
// download has it on disk; the last waits for the blob's digest, and a
// failed download ends the connection with FIN before the body is complete
// (never a short body, or wrong bytes, that look whole).
//
// Executor: the connection's strand.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <boost/beast/http/message.hpp>

#include "core/asio.h"
#include "core/unique_fd.h"
#include "proxy/byte_ranges.h"
#include "proxy/exchange.h"
#include "proxy/fetch.h"

namespace hubcache::proxy {

struct BlobBody {
  UniqueFd fd = {};                   // readable from offset 0
  std::uint64_t size = 0;             // the blob's full size
  std::shared_ptr<Fetch> fetch = {};  // null: every byte is on disk already
  // With `fetch`: the answer's last byte waits until the blob is verified,
  // for ranges too (proxy.verified_ranges). The blob's own last byte always
  // does (Fetch::WaitFor).
  bool verified_end = true;
  // The whole content of a small cached blob, instead of `fd` (a whole-body
  // answer only: BlobStore::SmallContent).
  std::shared_ptr<const std::string> content = {};
  // Awaited when the file cannot be read (EIO, or it ends before `size`),
  // before the connection is cut or the caller answers instead: the proxy
  // takes the blob out of the store here, so that the client's retry
  // fetches it again rather than failing the same way.
  std::function<net::awaitable<void>(ErrorCode)> unreadable = {};
};

struct SentBlob {
  std::uint64_t body_bytes = 0;
  // The blob's file could not be read (EIO, or it ended early): the
  // connection was cut, or, when `answered` is false, nothing was sent and
  // the caller still owes the client an answer.
  ErrorCode read_error = {};
  bool answered = true;
};

// Answers `exchange` (HEAD: the head only), unless the file cannot be read
// before anything is sent (see SentBlob).
net::awaitable<SentBlob> SendBlob(Exchange& exchange, http::response_header<> head,
                                  const RangeRequest& range, BlobBody body);

}  // namespace hubcache::proxy
