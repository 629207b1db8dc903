#include "proxy/hub_client.h"

#include <gtest/gtest.h>

#include <mutex>
#include <sstream>
#include <set>
#include <thread>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/log.h"
#include "proxy/errc.h"
#include "proxy/exchange.h"
#include "proxy/server.h"
#include "tests/support/run_async.h"

namespace hubcache::proxy {
namespace {

using std::chrono::milliseconds;
using testing::RunAsync;

// A scripted upstream: each path does one thing.
class Upstream final : public Handler {
 public:
  net::awaitable<void> Handle(Exchange& exchange) override {
    const std::string target(ToStd(exchange.request().target()));
    {
      std::lock_guard lock(mu);
      ports.insert(exchange.stream().socket().remote_endpoint().port());
      const auto auth = exchange.request().find(http::field::authorization);
      authorization[target] =
          auth == exchange.request().end() ? "" : std::string(auth->value());
      ++hits[target];
    }
    auto executor = co_await net::this_coro::executor;
    if (target.starts_with("/redirect-to?")) {  // absolute or relative Location from the query
      StringResponse response(http::status::found, 11);
      response.set(http::field::location, target.substr(std::strlen("/redirect-to?")));
      co_await exchange.Send(std::move(response));
    } else if (target == "/loop") {
      StringResponse response(http::status::temporary_redirect, 11);
      response.set(http::field::location, "/loop");
      co_await exchange.Send(std::move(response));
    } else if (target == "/see-other") {
      StringResponse response(http::status::see_other, 11);
      response.set(http::field::location, "dir/../ok");
      co_await exchange.Send(std::move(response));
    } else if (target == "/slow-head") {
      net::steady_timer timer(executor, milliseconds(1500));
      co_await timer.async_wait(net::use_awaitable);
      co_await exchange.Send(StringResponse(http::status::ok, 11));
    } else if (target == "/stall-body") {
      // Announce 100 bytes, send 10, then go quiet.
      const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
      co_await net::async_write(exchange.stream(), net::buffer(head), net::use_awaitable);
      net::steady_timer timer(executor, milliseconds(3000));
      co_await timer.async_wait(net::use_awaitable);
      exchange.MarkAnswered(200, 10, false);
    } else if (target.starts_with("/flaky")) {  // /flaky-<status>-<failures>
      const unsigned status = std::stoul(target.substr(7, 3));
      const int failures = std::stoi(target.substr(11));
      int seen = 0;
      {
        std::lock_guard lock(mu);
        seen = hits[target];
      }
      if (seen <= failures) {
        StringResponse response(static_cast<http::status>(status), 11);
        response.set(http::field::retry_after, status == 429 ? "1" : "0");
        response.body() = R"({"error":"try later"})";
        co_await exchange.Send(std::move(response));
      } else {
        StringResponse response(http::status::ok, 11);
        response.body() = "finally";
        co_await exchange.Send(std::move(response));
      }
    } else if (target == "/breaks" || target == "/breaks-badly") {
      // 1000 bytes; the first answer stops after 400 and closes.
      const std::string body = Body1000();
      const auto range = exchange.request().find(http::field::range);
      if (range == exchange.request().end()) {
        const std::string head =
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"e1\"\r\n\r\n" + body.substr(0, 400);
        co_await net::async_write(exchange.stream(), net::buffer(head), net::use_awaitable);
        exchange.MarkAnswered(200, 400, false);
        co_return;
      }
      {
        std::lock_guard lock(mu);
        resume_range = std::string(range->value());
        const auto if_range = exchange.request().find(http::field::if_range);
        resume_if_range = if_range == exchange.request().end() ? "" : std::string(if_range->value());
      }
      const std::uint64_t from = target == "/breaks" ? 400 : 300;  // badly: wrong offset
      StringResponse response(http::status::partial_content, 11);
      response.set(http::field::content_range, "bytes " + std::to_string(from) + "-999/1000");
      response.set(http::field::etag, "\"e1\"");
      response.body() = body.substr(from);
      co_await exchange.Send(std::move(response));
    } else if (target == "/big") {
      StringResponse response(http::status::ok, 11);
      response.body() = std::string(3 << 20, 'b');
      co_await exchange.Send(std::move(response));
    } else {
      StringResponse response(http::status::ok, 11);
      response.set(http::field::content_type, "text/plain");
      response.set("X-Target", target);
      response.body() = "hello from " + target;
      co_await exchange.Send(std::move(response));
    }
  }
  static std::string Body1000() {
    std::string body;
    for (int i = 0; body.size() < 1000; ++i) body += std::to_string(i) + ",";
    return body.substr(0, 1000);
  }
  std::mutex mu;
  std::string resume_range;
  std::string resume_if_range;
  std::set<std::uint16_t> ports;
  std::map<std::string, std::string> authorization;
  std::map<std::string, int> hits;
};

class HubClientTest : public ::testing::Test {
 protected:
  std::uint16_t StartServer(Upstream& handler, ServerOptions options = {}) {
    options.listen = {"127.0.0.1:0"};
    auto server = Server::Create(ioc_, options, handler);
    EXPECT_TRUE(server);
    (*server)->Start();
    const std::uint16_t port = (*server)->endpoints().front().port();
    servers_.push_back(std::move(*server));
    return port;
  }
  void SetUp() override {
    options_.response_timeout = milliseconds(500);
    options_.read_timeout = milliseconds(500);
    options_.max_retries = 3;
  }
  void StartThreads() {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  void TearDown() override {
    client_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    servers_.clear();
  }
  HubClient* Client() {
    auto client = HubClient::Create(options_, {}, RetryPolicy{milliseconds(5), milliseconds(20)});
    EXPECT_TRUE(client);
    client_ = std::move(*client);
    return client_.get();
  }
  std::unique_ptr<HubClient> client_;  // destroyed before client_ioc_
  static std::string Url(std::uint16_t port, const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }

  net::io_context ioc_;
  net::io_context client_ioc_;  // one loop for all of a test's requests (pooled sockets)
  std::vector<std::unique_ptr<Server>> servers_;
  std::vector<std::thread> threads_;
  UpstreamOptions options_;
};

TEST_F(HubClientTest, FetchStreamsStatusHeadersAndBody) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/file?x=1")}));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->head.status, 200u);
  EXPECT_EQ(response->head.Header("x-target"), "/file?x=1");
  EXPECT_EQ(response->body, "hello from /file?x=1");
}

TEST_F(HubClientTest, SequentialRequestsReuseOneConnection) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  for (int i = 0; i < 10; ++i) {
    auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/n" + std::to_string(i))}));
    ASSERT_TRUE(response) << response.error().message();
  }
  EXPECT_EQ(client->pool().opened(), 1u);
  EXPECT_EQ(upstream.ports.size(), 1u);
  EXPECT_EQ(client->pool().idle_count(), 1u);
}

TEST_F(HubClientTest, HeadReadsNoBody) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  for (int i = 0; i < 3; ++i) {
    auto response = RunAsync(client_ioc_, client->Fetch({.method = http::verb::head, .url = Url(port, "/h")}));
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->head.Header("content-length"), std::to_string(std::strlen("hello from /h")));
    EXPECT_TRUE(response->body.empty());
  }
  EXPECT_EQ(client->pool().opened(), 1u);
}

TEST_F(HubClientTest, RelativeAndAbsoluteRedirectsAndTokenOnlyToItsOrigin) {
  Upstream hub;
  Upstream cdn;
  const auto hub_port = StartServer(hub);
  const auto cdn_port = StartServer(cdn);
  StartThreads();
  options_.url = Url(hub_port, "");
  auto client = Client();
  // hub → (relative) hub → (absolute) cdn
  const std::string cdn_target = Url(cdn_port, "/blob?Signature=secret");
  const std::string second = "/redirect-to?" + cdn_target;
  auto response = RunAsync(client_ioc_, client->Fetch(
      {.url = Url(hub_port, "/redirect-to?" + second), .token = Secret("hf_token")}));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->head.status, 200u);
  EXPECT_EQ(response->body, "hello from /blob?Signature=secret");
  EXPECT_EQ(response->head.url, cdn_target);
  EXPECT_EQ(hub.authorization["/redirect-to?" + second], "Bearer hf_token");
  EXPECT_EQ(hub.authorization[second], "Bearer hf_token");
  EXPECT_EQ(cdn.authorization["/blob?Signature=secret"], "") << "token leaked to another origin";
}

TEST_F(HubClientTest, TokenIsNotSentBackAfterLeavingItsOrigin) {
  Upstream hub;
  Upstream other;
  const auto hub_port = StartServer(hub);
  const auto other_port = StartServer(other);
  StartThreads();
  options_.url = Url(hub_port, "");
  auto client = Client();
  // hub → other → back to hub: the token is sent to the hub each time it is
  // the destination (same origin as the request), never to `other`.
  const std::string back = Url(hub_port, "/final");
  auto response = RunAsync(client_ioc_, client->Fetch(
      {.url = Url(hub_port, "/redirect-to?" + Url(other_port, "/redirect-to?" + back)),
       .token = Secret("hf_token")}));
  ASSERT_TRUE(response);
  EXPECT_EQ(other.authorization["/redirect-to?" + back], "");
  EXPECT_EQ(hub.authorization["/final"], "Bearer hf_token");
}

TEST_F(HubClientTest, RedirectNotFollowedWhenNotAsked) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch(
      {.method = http::verb::head, .url = Url(port, "/redirect-to?https://cdn.example/x"),
       .follow_redirects = false}));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->head.status, 302u);
  EXPECT_EQ(response->head.Header("location"), "https://cdn.example/x");
}

TEST_F(HubClientTest, RedirectLoopsEnd) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/loop")}));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), Errc::kTooManyRedirects);
  EXPECT_EQ(upstream.hits["/loop"], HubClient::kMaxRedirects + 1);
}

TEST_F(HubClientTest, SeeOtherTurnsIntoGetOfTheRelativeLocation) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(
      client_ioc_, client->Fetch({.method = http::verb::post, .url = Url(port, "/see-other"), .body = "x"}));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->body, "hello from /dir/../ok");
}

TEST_F(HubClientTest, ResponseHeadDeadline) {
  options_.max_retries = 0;
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/slow-head")}));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), beast::error::timeout);
}

TEST_F(HubClientTest, BodyIdleDeadlineAfterAPrefix) {
  options_.max_retries = 0;
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/stall-body")}));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), beast::error::timeout);
}

TEST_F(HubClientTest, ConnectFailureIsAnErrorAfterRetries) {
  auto client = Client();
  // A port nobody listens on (bind, read the port, close).
  net::io_context tmp;
  net::ip::tcp::acceptor acceptor(tmp, {net::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  acceptor.close();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/x")}));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), net::error::connection_refused);
}

TEST_F(HubClientTest, StalePooledConnectionIsReplacedTransparently) {
  Upstream upstream;
  ServerOptions options;
  options.idle_timeout = milliseconds(100);  // the server drops idle keep-alives fast
  const auto port = StartServer(upstream, options);
  StartThreads();
  auto client = Client();
  ASSERT_TRUE(RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/a")})));
  // Wait (bounded) until the server has dropped the idle connection.
  for (int i = 0; i < 500 && servers_.front()->connection_count() > 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(servers_.front()->connection_count(), 0u);
  auto second = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/b")}));
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->body, "hello from /b");
  EXPECT_EQ(client->pool().opened(), 2u);
}

TEST_F(HubClientTest, FetchLimitsBodySize) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/big")}, 1 << 20));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), Errc::kBodyTooLarge);
}

TEST_F(HubClientTest, BadUrlsAreRefused) {
  auto client = Client();
  for (const char* url : {"ftp://x/y", "not a url", ""}) {
    auto response = RunAsync(client_ioc_, client->Fetch({.url = url}));
    ASSERT_FALSE(response) << url;
    EXPECT_EQ(response.error(), Errc::kBadUrl);
  }
}

TEST_F(HubClientTest, RetriesServerErrorsUntilSuccess) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  for (const char* path : {"/flaky-503-2", "/flaky-500-1", "/flaky-502-3", "/flaky-504-1"}) {
    auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, path)}));
    ASSERT_TRUE(response) << path << ": " << response.error().message();
    EXPECT_EQ(response->head.status, 200u) << path;
    EXPECT_EQ(response->body, "finally");
  }
  EXPECT_EQ(upstream.hits["/flaky-503-2"], 3);
  EXPECT_EQ(upstream.hits["/flaky-502-3"], 4);
}

TEST_F(HubClientTest, HonoursRetryAfterOn429) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  const auto start = std::chrono::steady_clock::now();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/flaky-429-1")}));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "finally");
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(900));
}

TEST_F(HubClientTest, ExhaustedRetriesHandTheErrorAnswerOn) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/flaky-503-99")}));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->head.status, 503u);
  EXPECT_EQ(response->body, R"({"error":"try later"})");
  EXPECT_EQ(upstream.hits["/flaky-503-99"], 4);  // 1 + max_retries
}

TEST_F(HubClientTest, NonIdempotentRequestsAreNotRetried) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(
      client_ioc_, client->Fetch({.method = http::verb::post, .url = Url(port, "/flaky-503-1")}));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->head.status, 503u);
  EXPECT_EQ(upstream.hits["/flaky-503-1"], 1);
}

TEST_F(HubClientTest, BrokenBodyIsResumedWithRangeAndIfRange) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/breaks")}));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->head.status, 200u);
  EXPECT_EQ(response->body, Upstream::Body1000());
  EXPECT_EQ(upstream.resume_range, "bytes=400-");
  EXPECT_EQ(upstream.resume_if_range, "\"e1\"");
}

TEST_F(HubClientTest, ResumeThatDoesNotContinueExactlyFails) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  auto response = RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/breaks-badly")}));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error(), Errc::kResumeFailed);
}

TEST_F(HubClientTest, NeverLogsTokensOrSignedQueryStrings) {
  Upstream upstream;
  const auto port = StartServer(upstream);
  StartThreads();
  auto client = Client();
  std::ostringstream captured;
  log::Configure({log::Level::kTrace, log::Format::kText});
  log::TEST_Capture(&captured);
  // A redirect to a signed URL, retries, a resume and a failure, all with a token.
  const std::string signed_target = "/flaky-503-2?Signature=topsecret&Key-Pair-Id=k";
  RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/redirect-to?" + signed_target),
                                       .token = Secret("hf_secret_token")}));
  RunAsync(client_ioc_, client->Fetch({.url = Url(port, "/breaks?Signature=topsecret"),
                                       .token = Secret("hf_secret_token")}));
  RunAsync(client_ioc_, client->Fetch({.url = "http://127.0.0.1:1/x?Signature=topsecret",
                                       .token = Secret("hf_secret_token")}));
  log::TEST_Capture(nullptr);
  log::Configure({});
  const std::string text = captured.str();
  EXPECT_NE(text.find("upstream_retry"), std::string::npos) << "nothing was logged: " << text;
  EXPECT_EQ(text.find("hf_secret_token"), std::string::npos) << text;
  EXPECT_EQ(text.find("topsecret"), std::string::npos) << text;
}

TEST_F(HubClientTest, TokenNeverGoesToAnotherHostEvenWhenAskedDirectly) {
  Upstream hub;
  Upstream cdn;
  const auto hub_port = StartServer(hub);
  const auto cdn_port = StartServer(cdn);
  StartThreads();
  options_.url = Url(hub_port, "");
  auto client = Client();
  ASSERT_TRUE(RunAsync(client_ioc_, client->Fetch({.url = Url(cdn_port, "/blob"),
                                                   .token = Secret("hf_token")})));
  EXPECT_EQ(cdn.authorization["/blob"], "");
  ASSERT_TRUE(RunAsync(client_ioc_, client->Fetch({.url = Url(hub_port, "/api"),
                                                   .token = Secret("hf_token")})));
  EXPECT_EQ(hub.authorization["/api"], "Bearer hf_token");
}

}  // namespace
}  // namespace hubcache::proxy
