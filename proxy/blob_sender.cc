#include "proxy/blob_sender.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/errc.h"
#include "core/log.h"

namespace hubcache::proxy {
namespace {

using tcp = net::ip::tcp;

// Bodies up to this size are read into memory and written with their head.
constexpr std::uint64_t kSmallBody = 64 * 1024;

// One part of the body: literal text (multipart framing), then a span of
// the blob (absent for the closing delimiter).
struct Piece {
  std::string prefix;
  std::optional<ByteSpan> span;
};

std::string NewBoundary() {
  std::random_device rd;
  return fmt::format("hubcache-{:016x}{:08x}", (std::uint64_t{rd()} << 32) | rd(), rd());
}

// Holds a socket's partial segments back (TCP_CORK) while a stored body goes
// out, so the head and the file leave in full-sized segments; without it a
// sendfile loop sends many short ones (on loopback: 40k segments per GiB
// instead of 24k, and 10% less throughput). The last partial segment leaves
// when the cork is removed.
class Cork {
 public:
  explicit Cork(int fd) : fd_(fd) { Set(1); }
  ~Cork() { Set(0); }
  Cork(const Cork&) = delete;
  Cork& operator=(const Cork&) = delete;

 private:
  void Set(int on) { ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on); }
  int fd_;
};

// Waits until `socket` is writable or `timeout` passes (then the socket's
// operations are cancelled and the wait reports operation_aborted).
net::awaitable<ErrorCode> WaitWritable(ServerSocket& socket, std::chrono::milliseconds timeout) {
  net::steady_timer timer(socket.get_executor(), timeout);
  auto executor = co_await net::this_coro::executor;
  timer.async_wait(net::bind_executor(executor, [&socket](ErrorCode ec) {
    if (!ec) {
      ErrorCode ignored;
      socket.cancel(ignored);
    }
  }));
  ErrorCode ec;
  co_await socket.async_wait(tcp::socket::wait_write, net::redirect_error(net::use_awaitable, ec));
  timer.cancel();
  co_return ec;
}

// Sends bytes [offset, offset + length) of `fd` with sendfile(2).
net::awaitable<ErrorCode> SendFileRange(ServerSocket& socket, int fd, std::uint64_t offset,
                                        std::uint64_t length, std::chrono::milliseconds timeout,
                                        std::uint64_t& sent) {
  ErrorCode ec;
  socket.native_non_blocking(true, ec);
  if (ec) co_return ec;
  while (length > 0) {
    off_t off = static_cast<off_t>(offset);
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, 1 << 30));
    const ssize_t n = ::sendfile(socket.native_handle(), fd, &off, want);
    if (n > 0) {
      offset += static_cast<std::uint64_t>(n);
      length -= static_cast<std::uint64_t>(n);
      sent += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) co_return make_error_code(core::Errc::kCorrupt);  // file shorter than promised
    if (errno == EINTR) continue;
    if (errno != EAGAIN) co_return core::ErrnoError(errno);
    if (auto wait = co_await WaitWritable(socket, timeout)) co_return wait;
  }
  co_return ErrorCode();
}

}  // namespace

net::awaitable<SentBlob> SendBlob(Exchange& exchange, http::response_header<> head,
                                  const RangeRequest& range, BlobBody body) {
  const std::uint64_t total = body.size;
  std::vector<Piece> pieces;
  std::uint64_t length = 0;
  switch (range.kind) {
    case RangeRequest::Kind::kWhole:
      head.result(http::status::ok);
      if (total > 0) pieces.push_back({"", ByteSpan{0, total - 1}});
      length = total;
      break;
    case RangeRequest::Kind::kUnsatisfiable:
      head.result(http::status::range_not_satisfiable);
      head.set(http::field::content_range, UnsatisfiedContentRange(total));
      head.erase(http::field::content_type);
      break;
    case RangeRequest::Kind::kRanges:
      head.result(http::status::partial_content);
      if (range.spans.size() == 1) {
        const ByteSpan& span = range.spans.front();
        head.set(http::field::content_range, ContentRange(span, total));
        pieces.push_back({"", span});
        length = span.length();
        break;
      }
      {
        const std::string boundary = NewBoundary();
        const std::string part_type =
            head[http::field::content_type].empty()
                ? std::string("application/octet-stream")
                : std::string(ToStd(head[http::field::content_type]));
        head.set(http::field::content_type,
                 fmt::format("multipart/byteranges; boundary={}", boundary));
        for (const ByteSpan& span : range.spans) {
          pieces.push_back({fmt::format("\r\n--{}\r\nContent-Type: {}\r\nContent-Range: {}\r\n\r\n",
                                        boundary, part_type, ContentRange(span, total)),
                            span});
          length += pieces.back().prefix.size() + span.length();
        }
        pieces.push_back({fmt::format("\r\n--{}--\r\n", boundary), std::nullopt});
        length += pieces.back().prefix.size();
      }
      break;
  }
  head.set(http::field::content_length, std::to_string(length));
  const unsigned status = head.result_int();
  if (body.content && pieces.size() == 1 && pieces.front().prefix.empty() &&
      body.content->size() == total) {
    StringResponse response(std::move(head));
    response.body().assign(*body.content, pieces.front().span->first, length);
    co_await exchange.Send(std::move(response));
    co_return SentBlob{.body_bytes = exchange.body_bytes()};
  }
  if (!exchange.is_head() && !body.fetch && pieces.size() == 1 && pieces.front().prefix.empty() &&
      length <= kSmallBody) {
    // A small cached body goes out with its head in one write: cheaper than
    // a second system call for sendfile (most config and tokenizer files).
    StringResponse response(std::move(head));
    response.body().resize(length);
    const ssize_t got = ::pread(body.fd.get(), response.body().data(), length,
                                static_cast<off_t>(pieces.front().span->first));
    if (got == static_cast<ssize_t>(length)) {
      co_await exchange.Send(std::move(response));
      co_return SentBlob{.body_bytes = exchange.body_bytes()};
    }
    const ErrorCode error = got < 0 ? core::ErrnoError(errno) : make_error_code(core::Errc::kCorrupt);
    log::Warn(log::Module::kProxy, "blob_read_failed",
              {{"req", exchange.id()}, {"error", error.message()}});
    if (body.unreadable) co_await body.unreadable(error);
    co_return SentBlob{.read_error = error, .answered = false};
  }
  auto& socket = exchange.stream().socket();
  // Not while following a download: bytes that have arrived must not wait
  // for more to fill a segment.
  std::optional<Cork> cork;
  if (!exchange.is_head() && !pieces.empty() && !body.fetch) cork.emplace(socket.native_handle());
  if (auto ec = co_await exchange.SendHead(head)) {
    exchange.MarkAnswered(status, 0, false);
    co_return SentBlob{};
  }
  if (exchange.is_head() || pieces.empty()) {
    exchange.MarkAnswered(status, 0, exchange.keep_alive());
    co_return SentBlob{};
  }

  std::uint64_t sent = 0;
  ErrorCode ec;
  for (const Piece& piece : pieces) {
    const bool last_piece = &piece == &pieces.back();
    if (!piece.prefix.empty()) {
      exchange.stream().expires_after(exchange.write_timeout());
      const std::size_t n = co_await net::async_write(
          exchange.stream(), net::buffer(piece.prefix), net::redirect_error(net::use_awaitable, ec));
      sent += n;
      if (ec) break;
    }
    if (!piece.span) continue;
    std::uint64_t pos = piece.span->first;
    const std::uint64_t end = piece.span->last + 1;
    while (pos < end && !ec) {
      std::uint64_t available = total;
      if (body.fetch) {
        auto waited = co_await body.fetch->WaitFor(pos + 1, pos);
        if (!waited) {
          ec = waited.error();
          break;
        }
        available = *waited;
        if (available <= pos) {
          ec = make_error_code(core::Errc::kUnavailable);
          break;
        }
      }
      std::uint64_t stop = std::min(available, end);
      if (body.fetch && body.verified_end && last_piece && stop == end &&
          !body.fetch->verified()) {
        // The answer's last byte only once the blob is verified: a range
        // of wrong bytes ends as a cut, never as a complete answer.
        if (end - 1 > pos) {
          stop = end - 1;
        } else if (auto verified = co_await body.fetch->WaitVerified(); !verified) {
          ec = verified.error();
          break;
        }
      }
      const std::uint64_t n = stop - pos;
      ec = co_await SendFileRange(socket, body.fd.get(), pos, n, exchange.write_timeout(), sent);
      pos += n;
    }
    if (ec) break;
  }
  if (ec) {
    log::Info(log::Module::kProxy, "body_cut",
              {{"req", exchange.id()}, {"sent", sent}, {"of", length}, {"error", ec.message()}});
    // The file's side of sendfile: the disk failed, or the file is shorter
    // than its record (a peer's socket error is never EIO).
    const bool unreadable = ec == core::ErrnoError(EIO) || ec == core::Errc::kCorrupt;
    if (unreadable && body.unreadable) co_await body.unreadable(ec);
    exchange.Abort(status, sent);
    co_return SentBlob{.body_bytes = sent, .read_error = unreadable ? ec : ErrorCode()};
  }
  exchange.MarkAnswered(status, sent, exchange.keep_alive());
  co_return SentBlob{.body_bytes = sent};
}

}  // namespace hubcache::proxy
