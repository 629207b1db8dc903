#include "proxy/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "proxy/exchange.h"
#include "proxy/router.h"
#include "tests/support/http_client.h"

namespace hubcache::proxy {
namespace {

using hubcache::testing::HttpConnection;
using hubcache::testing::HttpRequest;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A handler for server mechanics: /slow waits, /throw throws, /silent never
// answers; everything else goes to the real Router.
class TestHandler final : public Handler {
 public:
  net::awaitable<void> Handle(Exchange& exchange) override {
    const std::string_view target = ToStd(exchange.request().target());
    if (target.starts_with("/slow/")) {
      started.fetch_add(1);
      const int ms = std::stoi(std::string(target.substr(6)));
      net::steady_timer timer(co_await net::this_coro::executor, milliseconds(ms));
      ErrorCode ec;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      StringResponse response(http::status::ok, 11);
      response.body() = "slept";
      co_await exchange.Send(std::move(response));
      co_return;
    }
    if (target == "/throw") throw std::runtime_error("boom");
    if (target == "/silent") co_return;
    co_await router_.Handle(exchange);
  }
  std::atomic<int> started{0};
  Router& router() { return router_; }

 private:
  Router router_;
};

class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = {}) {
    if (options.listen == ServerOptions{}.listen) options.listen = {"127.0.0.1:0"};
    auto server = Server::Create(ioc_, options, handler_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    server_->Start();
    port_ = server_->endpoints().front().port();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  // Starts a graceful shutdown and waits until the server reports it drained.
  // Returns how long that took.
  milliseconds ShutdownAndWait(milliseconds deadline) {
    shut_down_ = true;
    std::promise<void> drained;
    const auto start = Clock::now();
    server_->Shutdown(deadline, [&drained] { drained.set_value(); });
    EXPECT_EQ(drained.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  }

  void TearDown() override {
    if (server_ && !shut_down_) ShutdownAndWait(milliseconds(0));
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  net::io_context ioc_;
  TestHandler handler_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  bool shut_down_ = false;
};

TEST_F(ServerTest, HealthzAnswersOkJson) {
  Start();
  auto response = HttpRequest("127.0.0.1", port_, "GET", "/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->Header("content-type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(response->body)["status"], "ok");
}

TEST_F(ServerTest, ReadyzFollowsReadiness) {
  Start();
  auto response = HttpRequest("127.0.0.1", port_, "GET", "/readyz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 503u);
  EXPECT_EQ(nlohmann::json::parse(response->body)["status"], "not ready");
  handler_.router().SetReady(true);
  response = HttpRequest("127.0.0.1", port_, "GET", "/readyz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(nlohmann::json::parse(response->body)["status"], "ready");
}

TEST_F(ServerTest, HeadHasLengthButNoBody) {
  Start();
  auto conn = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(conn);
  auto head = conn->Request("HEAD", "/healthz");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200u);
  EXPECT_EQ(head->Header("content-length"), "15");
  EXPECT_TRUE(head->body.empty());
  // The next response on the same connection parses: no stray body bytes.
  auto get = conn->Request("GET", "/healthz");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, R"({"status":"ok"})");
}

TEST_F(ServerTest, UnknownPathIsJson404AndWrongMethod405) {
  Start();
  auto response = HttpRequest("127.0.0.1", port_, "GET", "/nope?x=1");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404u);
  EXPECT_EQ(nlohmann::json::parse(response->body)["error"], "Not found");
  response = HttpRequest("127.0.0.1", port_, "POST", "/healthz", {}, "x");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 405u);
}

TEST_F(ServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  auto conn = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(conn);
  for (int i = 0; i < 20; ++i) {
    auto response = conn->Request("GET", "/healthz");
    ASSERT_TRUE(response) << i;
    EXPECT_EQ(response->status, 200u);
    EXPECT_TRUE(response->keep_alive);
  }
  EXPECT_EQ(server_->connection_count(), 1u);
}

TEST_F(ServerTest, OversizedHeaderIs431) {
  ServerOptions options;
  options.max_header_bytes = 2048;
  Start(options);
  auto response = HttpRequest("127.0.0.1", port_, "GET", "/healthz",
                              {{"X-Big", std::string(4096, 'a')}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431u);
  EXPECT_FALSE(nlohmann::json::parse(response->body)["error"].get<std::string>().empty());
}

TEST_F(ServerTest, MalformedRequestIs400AndClosed) {
  Start();
  auto conn = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(conn);
  ASSERT_TRUE(conn->SendRaw("GARBAGE\x01 / HTTP/1.1\r\n\r\n"));
  auto [data, orderly] = conn->ReadUntilClose(std::chrono::seconds(5));
  EXPECT_TRUE(data.starts_with("HTTP/1.1 400")) << data;
  EXPECT_NE(data.find("\"error\""), std::string::npos) << data;
  EXPECT_TRUE(orderly);
}

TEST_F(ServerTest, IdleKeepAliveConnectionIsClosedAfterIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = milliseconds(200);
  Start(options);
  auto conn = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(conn);
  ASSERT_TRUE(conn->Request("GET", "/healthz"));
  const auto start = Clock::now();
  auto [data, orderly] = conn->ReadUntilClose(std::chrono::seconds(5));
  EXPECT_TRUE(data.empty());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
}

TEST_F(ServerTest, SlowClientCannotHoldARequestOpen) {
  ServerOptions options;
  options.request_timeout = milliseconds(300);
  Start(options);
  auto conn = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(conn);
  ASSERT_TRUE(conn->SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n"));  // never finished
  const auto start = Clock::now();
  auto [data, orderly] = conn->ReadUntilClose(std::chrono::seconds(5));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(data.find("200"), std::string::npos);
}

TEST_F(ServerTest, ConnectionsBeyondTheLimitAreClosed) {
  ServerOptions options;
  options.max_connections = 2;
  Start(options);
  auto a = HttpConnection::Connect("127.0.0.1", port_);
  auto b = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Request("GET", "/healthz"));
  ASSERT_TRUE(b->Request("GET", "/healthz"));
  auto c = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(c);  // the kernel accepts; the server closes it
  auto refused = c->Request("GET", "/healthz", {}, {}, std::chrono::seconds(5));
  EXPECT_FALSE(refused);
  // Once one leaves, a new connection is served again.
  a.reset();
  std::optional<testing::HttpResponse> served;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    auto d = HttpConnection::Connect("127.0.0.1", port_);
    served = d ? d->Request("GET", "/healthz", {}, {}, std::chrono::seconds(2)) : std::nullopt;
  }
  EXPECT_TRUE(served);
}

TEST_F(ServerTest, ListensOnIpv6) {
  ServerOptions options;
  options.listen = {"[::1]:0", "127.0.0.1:0"};
  Start(options);
  const auto endpoints = server_->endpoints();
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_TRUE(endpoints[0].address().is_v6());
  auto v6 = HttpRequest("::1", endpoints[0].port(), "GET", "/healthz");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->status, 200u);
  auto v4 = HttpRequest("127.0.0.1", endpoints[1].port(), "GET", "/healthz");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->status, 200u);
}

TEST_F(ServerTest, AddressInUseIsAnError) {
  Start();
  ServerOptions options;
  options.listen = {"127.0.0.1:" + std::to_string(port_)};
  net::io_context other;
  auto second = Server::Create(other, options, handler_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), net::error::address_in_use);
}

TEST_F(ServerTest, HandlerExceptionClosesOnlyThatConnection) {
  Start();
  auto conn = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(conn);
  EXPECT_FALSE(conn->Request("GET", "/throw"));
  auto other = HttpRequest("127.0.0.1", port_, "GET", "/healthz");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200u);
}

TEST_F(ServerTest, UnansweredRequestGets500) {
  Start();
  auto response = HttpRequest("127.0.0.1", port_, "GET", "/silent");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500u);
}

TEST_F(ServerTest, ShutdownLetsInFlightRequestsFinishAndClosesIdleOnes) {
  Start();
  auto idle = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(idle);
  ASSERT_TRUE(idle->Request("GET", "/healthz"));

  auto busy = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(busy);
  auto in_flight = std::async(std::launch::async, [&] { return busy->Request("GET", "/slow/500"); });
  while (handler_.started.load() == 0) std::this_thread::yield();

  const milliseconds took = ShutdownAndWait(std::chrono::seconds(10));
  auto response = in_flight.get();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200u);
  EXPECT_EQ(response->body, "slept");
  EXPECT_FALSE(response->keep_alive);
  EXPECT_GE(took, milliseconds(300));  // it waited for the request
  EXPECT_LT(took, std::chrono::seconds(5));

  auto [data, orderly] = idle->ReadUntilClose(std::chrono::seconds(2));
  EXPECT_TRUE(data.empty());
  EXPECT_TRUE(orderly);
  EXPECT_FALSE(HttpRequest("127.0.0.1", port_, "GET", "/healthz")) << "still accepting";
}

TEST_F(ServerTest, ShutdownDeadlineCutsLongRequests) {
  Start();
  auto busy = HttpConnection::Connect("127.0.0.1", port_);
  ASSERT_TRUE(busy);
  auto in_flight =
      std::async(std::launch::async, [&] { return busy->Request("GET", "/slow/20000"); });
  while (handler_.started.load() == 0) std::this_thread::yield();
  const milliseconds took = ShutdownAndWait(milliseconds(200));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_FALSE(in_flight.get());  // cut at the deadline, not after 20 s
}

}  // namespace
}  // namespace hubcache::proxy
