#include "proxy/relay.h"

#include <fmt/format.h>

#include <boost/beast/core/error.hpp>

#include "core/log.h"
#include "proxy/errc.h"
#include "proxy/http_errors.h"
#include "proxy/shaping.h"

namespace hubcache::proxy {

RelaySink::RelaySink(Exchange& exchange, std::string from_base, std::string to_base,
                     CacheStatus cache)
    : exchange_(exchange),
      from_base_(std::move(from_base)),
      to_base_(std::move(to_base)),
      cache_(cache) {}

net::awaitable<Result<void>> RelaySink::OnHead(const ResponseHead& upstream) {
  http::response_header<> head;
  static_cast<http::fields&>(head) = ShapeRelayedHeaders(upstream.fields, from_base_, to_base_);
  head.result(upstream.status);
  head.set("X-Cache", CacheStatusHeader(cache_));
  exchange_.set_cache(CacheStatusHeader(cache_));
  status_ = upstream.status;
  const std::string length = upstream.Header("content-length");
  const bool bodyless = exchange_.is_head() || status_ == 204 || status_ == 304 ||
                        (status_ >= 100 && status_ < 200);
  if (!length.empty()) {
    head.set(http::field::content_length, length);
  } else if (!bodyless) {
    if (exchange_.request().version() >= 11) {
      head.set(http::field::transfer_encoding, "chunked");
      chunked_ = true;
    } else {
      exchange_.set_close();  // HTTP/1.0: the body ends with the connection
    }
  }
  head_sent_ = true;
  if (auto ec = co_await exchange_.SendHead(head)) co_return Fail(ec);
  co_return Result<void>();
}

net::awaitable<Result<void>> RelaySink::OnData(std::span<const std::uint8_t> data) {
  if (data.empty() || exchange_.is_head()) co_return Result<void>();
  ErrorCode ec;
  exchange_.stream().expires_after(exchange_.write_timeout());
  if (chunked_) {
    const std::string size_line = fmt::format("{:x}\r\n", data.size());
    const std::array<net::const_buffer, 3> buffers = {
        net::buffer(size_line), net::buffer(data.data(), data.size()), net::buffer("\r\n", 2)};
    co_await net::async_write(exchange_.stream(), buffers,
                              net::redirect_error(net::use_awaitable, ec));
  } else {
    co_await net::async_write(exchange_.stream(), net::buffer(data.data(), data.size()),
                              net::redirect_error(net::use_awaitable, ec));
  }
  if (ec) co_return Fail(ec);
  sent_ += data.size();
  co_return Result<void>();
}

net::awaitable<void> RelaySink::Finish(const Result<void>& result) {
  if (!head_sent_) {
    const unsigned status = HttpStatusFor(result ? ErrorCode(Errc::kUnexpectedStatus) : result.error());
    const std::string message = fmt::format("hubcache cannot reach the Hub ({})",
                                            result ? "no answer" : result.error().message());
    co_await exchange_.SendError(static_cast<http::status>(status), message);
    co_return;
  }
  if (!result) {
    log::Info(log::Module::kProxy, "relay_cut",
              {{"req", exchange_.id()}, {"sent", sent_}, {"error", result.error().message()}});
    exchange_.Abort(status_, sent_);
    co_return;
  }
  if (chunked_) {
    ErrorCode ec;
    exchange_.stream().expires_after(exchange_.write_timeout());
    co_await net::async_write(exchange_.stream(), net::buffer("0\r\n\r\n", 5),
                              net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      exchange_.MarkAnswered(status_, sent_, false);
      co_return;
    }
  }
  exchange_.MarkAnswered(status_, sent_, exchange_.keep_alive());
}

}  // namespace hubcache::proxy
