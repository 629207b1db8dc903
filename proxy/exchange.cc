#include "proxy/exchange.h"

#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

namespace hubcache::proxy {

Exchange::Exchange(ServerStream& stream, Request& request, std::string id,
                   std::chrono::milliseconds write_timeout,
                   const std::atomic<bool>* server_stopping)
    : stream_(stream),
      request_(request),
      id_(std::move(id)),
      write_timeout_(write_timeout),
      server_stopping_(server_stopping),
      keep_alive_(request.keep_alive()) {}

net::awaitable<ErrorCode> Exchange::Send(StringResponse response) {
  response.version(request_.version());
  keep_alive_ = keep_alive() && response.keep_alive();
  response.keep_alive(keep_alive_);
  if (response.find(http::field::content_length) == response.end()) {
    response.content_length(response.body().size());
  }
  const std::uint64_t body_bytes = is_head() ? 0 : response.body().size();
  const unsigned status = response.result_int();
  ErrorCode ec;
  stream_.expires_after(write_timeout_);
  if (is_head()) {
    http::response<http::empty_body> head(std::move(response.base()));
    http::response_serializer<http::empty_body> serializer(head);
    co_await http::async_write(stream_, serializer,
                               net::redirect_error(net::use_awaitable, ec));
  } else {
    co_await http::async_write(stream_, response,
                               net::redirect_error(net::use_awaitable, ec));
  }
  MarkAnswered(status, ec ? 0 : body_bytes, keep_alive_ && !ec);
  co_return ec;
}

net::awaitable<ErrorCode> Exchange::SendHead(http::response_header<>& head) {
  http::response<http::empty_body> message(std::move(head));
  message.version(request_.version());
  keep_alive_ = keep_alive();
  message.keep_alive(keep_alive_);
  ErrorCode ec;
  stream_.expires_after(write_timeout_);
  http::response_serializer<http::empty_body> serializer(message);
  co_await http::async_write_header(stream_, serializer,
                                    net::redirect_error(net::use_awaitable, ec));
  if (ec) keep_alive_ = false;
  co_return ec;
}

void Exchange::Abort(unsigned status, std::uint64_t body_bytes) {
  ErrorCode ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  MarkAnswered(status, body_bytes, false);
}

net::awaitable<ErrorCode> Exchange::SendError(http::status status,
                                              std::string_view message) {
  StringResponse response(status, request_.version());
  response.set(http::field::content_type, "application/json");
  response.body() = nlohmann::json{{"error", message}}.dump();
  co_return co_await Send(std::move(response));
}

void Exchange::MarkAnswered(unsigned status, std::uint64_t body_bytes,
                            bool keep_alive) {
  answered_ = true;
  status_ = status;
  body_bytes_ = body_bytes;
  keep_alive_ = keep_alive;
}

}  // namespace hubcache::proxy
