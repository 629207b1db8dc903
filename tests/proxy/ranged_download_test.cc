#include "proxy/ranged_download.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "proxy/errc.h"
#include "proxy/exchange.h"
#include "proxy/server.h"
#include "tests/proxy/server_util.h"
#include "tests/support/run_async.h"

namespace hubcache::proxy {
namespace {

using std::chrono::milliseconds;
using testing::RunAsync;

std::string Object(std::size_t size) {
  std::string out(size, '\0');
  std::uint64_t x = 88172645463325252ULL;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return out;
}

// A CDN for one object: `/obj?sig=N` is valid while N == current_sig.
class Cdn final : public Handler {
 public:
  explicit Cdn(std::string object) : object(std::move(object)) {}
  // A Cdn lives on the test's stack: the server answering with it must end
  // before it does (a session still answering the last request would touch it).
  ~Cdn() override {
    if (before_destroy) before_destroy();
  }
  std::function<void()> before_destroy;

  net::awaitable<void> Handle(Exchange& exchange) override {
    const std::string target(ToStd(exchange.request().target()));
    const int in_flight = ++concurrent;
    max_concurrent = std::max(max_concurrent.load(), in_flight);
    struct Leave {
      std::atomic<int>& n;
      ~Leave() { --n; }
    } leave{concurrent};
    ++requests;
    if (target != "/obj?sig=" + std::to_string(current_sig.load())) {
      co_await exchange.SendError(http::status::forbidden, "Request has expired");
      co_return;
    }
    const auto range_field = exchange.request().find(http::field::range);
    std::uint64_t first = 0;
    std::uint64_t last = object.size() - 1;
    const bool ranged = range_field != exchange.request().end();
    if (ranged) {
      const std::string range(range_field->value());
      ++ranged_requests;
      first = std::stoull(range.substr(6));
      last = std::stoull(range.substr(range.find('-') + 1));
    } else {
      ++plain_requests;
    }
    // Slow the first answers a little, so that workers overlap.
    net::steady_timer pause(co_await net::this_coro::executor, milliseconds(5));
    co_await pause.async_wait(net::use_awaitable);
    std::string body = object.substr(first, last - first + 1);
    if (drop_remaining.load() > 0 && body.size() > 1000) {
      --drop_remaining;
      // Announce the whole range, send half, close.
      std::string head = std::string(ranged ? "HTTP/1.1 206 Partial Content\r\n"
                                            : "HTTP/1.1 200 OK\r\n") +
                         "Content-Length: " + std::to_string(body.size()) + "\r\n" +
                         (ranged ? "Content-Range: bytes " + std::to_string(first) + "-" +
                                       std::to_string(last) + "/" +
                                       std::to_string(object.size()) + "\r\n"
                                 : "") +
                         "ETag: \"obj\"\r\n\r\n" + body.substr(0, body.size() / 2);
      co_await net::async_write(exchange.stream(), net::buffer(head), net::use_awaitable);
      exchange.MarkAnswered(ranged ? 206 : 200, body.size() / 2, false);
      co_return;
    }
    StringResponse response(ranged ? http::status::partial_content : http::status::ok, 11);
    if (ranged) {
      const std::uint64_t shown_first = lie_about_range ? first + 1 : first;
      response.set(http::field::content_range, "bytes " + std::to_string(shown_first) + "-" +
                                                   std::to_string(last) + "/" +
                                                   std::to_string(object.size()));
    }
    response.set(http::field::etag, "\"obj\"");
    bytes_sent += body.size();
    response.body() = std::move(body);
    co_await exchange.Send(std::move(response));
  }

  const std::string object;
  std::atomic<int> current_sig{0};
  std::atomic<int> requests{0};
  std::atomic<int> ranged_requests{0};
  std::atomic<int> plain_requests{0};
  std::atomic<int> concurrent{0};
  std::atomic<int> max_concurrent{0};
  std::atomic<int> drop_remaining{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  bool lie_about_range = false;
};

class MemorySink final : public ChunkSink {
 public:
  explicit MemorySink(std::size_t size) : data(size, '\0'), filled(size, false) {}
  net::awaitable<Result<void>> WriteAt(std::uint64_t offset,
                                       std::span<const std::uint8_t> bytes) override {
    std::lock_guard lock(mu);
    if (offset + bytes.size() > data.size()) co_return Fail(Errc::kResumeFailed);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (filled[offset + i]) ++rewritten;
      filled[offset + i] = true;
      data[offset + i] = static_cast<char>(bytes[i]);
    }
    co_return Result<void>();
  }
  std::mutex mu;
  std::string data;
  std::vector<bool> filled;
  std::size_t rewritten = 0;
};

class RangedDownloadTest : public ::testing::Test {
 protected:
  void Start(Cdn& cdn) {
    cdn.before_destroy = [this] { StopServer(); };
    ServerOptions options;
    options.listen = {"127.0.0.1:0"};
    auto server = Server::Create(ioc_, options, cdn);
    ASSERT_TRUE(server);
    server_ = std::move(*server);
    server_->Start();
    port_ = server_->endpoints().front().port();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
    UpstreamOptions upstream;
    upstream.max_retries = 3;
    auto client = HubClient::Create(upstream, {}, RetryPolicy{milliseconds(5), milliseconds(20)});
    ASSERT_TRUE(client);
    client_ = std::move(*client);
  }
  // Ends every session first (a session still answering when the loop stops
  // would be destroyed with the io_context, after the server it refers to),
  // then the loop. Idempotent.
  void StopServer() {
    if (!server_) return;
    StopServerGracefully(*server_);
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    server_.reset();
  }
  void TearDown() override {
    client_.reset();
    StopServer();
  }
  std::string Url(int sig) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/obj?sig=" + std::to_string(sig);
  }

  net::io_context ioc_;
  net::io_context client_ioc_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::unique_ptr<HubClient> client_;
};

TEST_F(RangedDownloadTest, ParallelRangesProduceExactBytes) {
  Cdn cdn(Object(3 * 1024 * 1024 + 123));
  Start(cdn);
  MemorySink sink(cdn.object.size());
  auto result = RunAsync(client_ioc_, DownloadRanges(*client_, {.url = Url(0), .size = cdn.object.size()},
                                                     sink, {.connections = 4, .chunk_bytes = 256 * 1024}));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(sink.data, cdn.object);
  EXPECT_EQ(sink.rewritten, 0u);
  EXPECT_EQ(cdn.ranged_requests.load(), 13);  // ceil(3 MiB + 123 / 256 KiB)
  EXPECT_EQ(cdn.plain_requests.load(), 0);
  EXPECT_GE(cdn.max_concurrent.load(), 2);
  EXPECT_LE(cdn.max_concurrent.load(), 4);
  EXPECT_EQ(cdn.bytes_sent.load(), cdn.object.size());  // every byte once
}

TEST_F(RangedDownloadTest, SmallObjectsUseOnePlainGet) {
  Cdn cdn(Object(300 * 1024));
  Start(cdn);
  MemorySink sink(cdn.object.size());
  auto result = RunAsync(client_ioc_, DownloadRanges(*client_, {.url = Url(0), .size = cdn.object.size()},
                                                     sink, {.connections = 8, .chunk_bytes = 256 * 1024}));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(sink.data, cdn.object);
  EXPECT_EQ(cdn.plain_requests.load(), 1);
  EXPECT_EQ(cdn.ranged_requests.load(), 0);
}

TEST_F(RangedDownloadTest, BrokenChunksResumeWhereTheyStopped) {
  Cdn cdn(Object(2 * 1024 * 1024));
  cdn.drop_remaining = 3;
  Start(cdn);
  MemorySink sink(cdn.object.size());
  auto result = RunAsync(client_ioc_, DownloadRanges(*client_, {.url = Url(0), .size = cdn.object.size()},
                                                     sink, {.connections = 4, .chunk_bytes = 256 * 1024}));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(sink.data, cdn.object);
  EXPECT_EQ(sink.rewritten, 0u) << "a resumed chunk must not resend what arrived";
  EXPECT_EQ(cdn.ranged_requests.load(), 8 + 3);
}

TEST_F(RangedDownloadTest, ExpiredSignedUrlIsResolvedAgainOnce) {
  Cdn cdn(Object(2 * 1024 * 1024));
  Start(cdn);
  cdn.current_sig = 1;  // the URL we start with has expired
  std::atomic<int> resolves{0};
  MemorySink sink(cdn.object.size());
  RangedJob job{.url = Url(0), .size = cdn.object.size()};
  job.resolve = [&]() -> net::awaitable<Result<std::string>> {
    ++resolves;
    co_return Url(cdn.current_sig.load());
  };
  auto result = RunAsync(client_ioc_, DownloadRanges(*client_, std::move(job), sink,
                                                     {.connections = 4, .chunk_bytes = 256 * 1024}));
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(sink.data, cdn.object);
  EXPECT_EQ(resolves.load(), 1);
}

TEST_F(RangedDownloadTest, ExpiryWithoutAWayToResolveFails) {
  Cdn cdn(Object(1024 * 1024));
  Start(cdn);
  cdn.current_sig = 1;
  MemorySink sink(cdn.object.size());
  auto result = RunAsync(client_ioc_, DownloadRanges(*client_, {.url = Url(0), .size = cdn.object.size()},
                                                     sink, {.connections = 2, .chunk_bytes = 256 * 1024}));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), Errc::kUrlExpired);
}

TEST_F(RangedDownloadTest, AWrongContentRangeIsRefused) {
  Cdn cdn(Object(1024 * 1024));
  cdn.lie_about_range = true;
  Start(cdn);
  MemorySink sink(cdn.object.size());
  auto result = RunAsync(client_ioc_, DownloadRanges(*client_, {.url = Url(0), .size = cdn.object.size()},
                                                     sink, {.connections = 2, .chunk_bytes = 256 * 1024}));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), Errc::kResumeFailed);
}

}  // namespace
}  // namespace hubcache::proxy
