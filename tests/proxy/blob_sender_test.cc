#include "proxy/blob_sender.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy/server.h"
#include "tests/proxy/server_util.h"
#include "tests/support/bytes.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace hubcache::proxy {
namespace {

using testing::Content;
using testing::HttpConnection;
using testing::HttpResponse;

net::awaitable<void> Done() { co_return; }

// A blob the test handler serves: its bytes, and how SendBlob gets them.
struct Blob {
  std::string bytes;
  std::filesystem::path path;  // the bytes on disk
  bool in_memory = false;      // BlobBody::content instead of the file
  std::uint64_t claimed_size = 0;  // BlobBody::size (the true size unless lying)
};

// Answers `/<name>` with the blob of that name through SendBlob, as the file
// routes do: the caller's head fields, the Range header parsed for the
// claimed size.
class BlobHandler final : public Handler {
 public:
  explicit BlobHandler(const std::map<std::string, Blob>& blobs) : blobs_(blobs) {}

  net::awaitable<void> Handle(Exchange& exchange) override {
    const std::string name(ToStd(exchange.request().target()).substr(1));
    const Blob& blob = blobs_.at(name);
    http::response_header<> head;
    head.set(http::field::etag, "\"" + name + "\"");
    head.set(http::field::accept_ranges, "bytes");
    head.set(http::field::content_type, "application/octet-stream");
    head.set("X-Cache", "HIT");
    const RangeRequest range =
        ParseRange(ToStd(exchange.request()[http::field::range]), blob.claimed_size);
    BlobBody body;
    body.size = blob.claimed_size;
    if (blob.in_memory) {
      body.content = std::make_shared<const std::string>(blob.bytes);
    } else {
      body.fd = UniqueFd(::open(blob.path.c_str(), O_RDONLY | O_CLOEXEC));
    }
    // Called before the connection is cut or the caller answers instead.
    body.unreadable = [this](ErrorCode) {
      read_errors_ += 1;
      return Done();
    };
    const SentBlob sent = co_await SendBlob(exchange, std::move(head), range, std::move(body));
    sent_ += sent.body_bytes;
    if (!sent.answered) {
      // The caller's part (proxy/file_routes.cc fetches the blob again).
      StringResponse response(http::status::service_unavailable, exchange.request().version());
      response.body() = "unreadable";
      co_await exchange.Send(std::move(response));
    }
  }
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<int> read_errors_{0};

 private:
  const std::map<std::string, Blob>& blobs_;
};

// One part of a multipart/byteranges body.
struct Part {
  std::string content_type;
  std::string content_range;
  std::string bytes;
};

// Splits a multipart/byteranges body by `boundary`; nullopt if malformed.
std::optional<std::vector<Part>> ParseMultipart(const std::string& body,
                                                const std::string& boundary) {
  std::vector<Part> parts;
  const std::string delimiter = "\r\n--" + boundary;
  std::size_t pos = body.find(delimiter);
  if (pos != 0) return std::nullopt;
  while (true) {
    pos += delimiter.size();
    if (body.compare(pos, 4, "--\r\n") == 0) {
      if (pos + 4 != body.size()) return std::nullopt;  // nothing after the close
      return parts;
    }
    if (body.compare(pos, 2, "\r\n") != 0) return std::nullopt;
    pos += 2;
    const std::size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) return std::nullopt;
    Part part;
    for (std::size_t line = pos; line < head_end;) {
      const std::size_t eol = std::min(body.find("\r\n", line), head_end);
      const std::string field = body.substr(line, eol - line);
      if (field.starts_with("Content-Type: ")) part.content_type = field.substr(14);
      if (field.starts_with("Content-Range: ")) part.content_range = field.substr(15);
      line = eol + 2;
    }
    const std::size_t next = body.find(delimiter, head_end + 4);
    if (next == std::string::npos) return std::nullopt;
    part.bytes = body.substr(head_end + 4, next - head_end - 4);
    parts.push_back(std::move(part));
    pos = next;
  }
}

class BlobSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Add("empty", "", false);
    Add("one", "x", false);
    Add("small", Content(1000, 1), false);
    Add("edge", Content(64 * 1024, 2), false);          // the largest one-write body
    Add("large", Content(3 * 1024 * 1024 + 7, 3), false);  // sendfile
    Add("memory", Content(5000, 4), true);
    // Files shorter than the size they were stored with (damaged on disk).
    Add("short-large", Content(200 * 1024, 5), false, 200 * 1024 + 100);
    Add("short-small", Content(1000, 6), false, 1000 + 100);
    ServerOptions options;
    options.listen = {"127.0.0.1:0"};
    auto server = Server::Create(ioc_, options, handler_);
    ASSERT_TRUE(server) << server.error().message();
    server_ = std::move(*server);
    server_->Start();
    port_ = server_->endpoints().front().port();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  void TearDown() override {
    if (server_ && !stopped_) StopServerGracefully(*server_);
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }
  // Ends every session, so that each handler has returned.
  void StopServer() {
    conn_.reset();
    StopServerGracefully(*server_);
    stopped_ = true;
  }

  void Add(const std::string& name, const std::string& bytes, bool in_memory,
           std::optional<std::uint64_t> claimed_size = std::nullopt) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    blobs_[name] = {bytes, path, in_memory, claimed_size.value_or(bytes.size())};
  }

  // A GET (or HEAD) of `name` with `range` ("" for none), on a connection
  // that is reused across the calls of one test.
  HttpResponse Fetch(const std::string& name, const std::string& range,
                     const std::string& method = "GET") {
    if (!conn_) conn_ = HttpConnection::Connect("127.0.0.1", port_);
    EXPECT_TRUE(conn_);
    testing::Headers headers;
    if (!range.empty()) headers.emplace_back("Range", range);
    auto response = conn_->Request(method, "/" + name, headers);
    EXPECT_TRUE(response) << method << " " << name << " " << range;
    if (!response) return {};
    EXPECT_TRUE(response->keep_alive) << method << " " << name << " " << range;
    return *response;
  }

  // Expects a 206 with exactly bytes [first, last] of `name`.
  void ExpectPartial(const std::string& name, const std::string& range, std::uint64_t first,
                     std::uint64_t last) {
    SCOPED_TRACE(name + " " + range);
    const std::string& bytes = blobs_.at(name).bytes;
    auto response = Fetch(name, range);
    EXPECT_EQ(response.status, 206u);
    EXPECT_EQ(response.Header("content-range"),
              "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                  std::to_string(bytes.size()));
    EXPECT_EQ(response.Header("content-length"), std::to_string(last - first + 1));
    EXPECT_EQ(response.Header("accept-ranges"), "bytes");
    EXPECT_EQ(response.Header("content-type"), "application/octet-stream");
    EXPECT_EQ(response.Header("etag"), "\"" + name + "\"");
    EXPECT_TRUE(response.body == bytes.substr(first, last - first + 1))
        << "body of " << response.body.size() << " bytes differs";
  }

  void ExpectUnsatisfiable(const std::string& name, const std::string& range) {
    SCOPED_TRACE(name + " " + range);
    auto response = Fetch(name, range);
    EXPECT_EQ(response.status, 416u);
    EXPECT_EQ(response.Header("content-range"),
              "bytes */" + std::to_string(blobs_.at(name).bytes.size()));
    EXPECT_EQ(response.Header("content-length"), "0");
    EXPECT_EQ(response.Header("accept-ranges"), "bytes");
    EXPECT_EQ(response.Header("content-type"), "");  // nothing to describe
    EXPECT_TRUE(response.body.empty());
  }

  testing::TempDir dir_{"hubcache-blob-sender-test"};
  std::map<std::string, Blob> blobs_;
  net::io_context ioc_;
  BlobHandler handler_{blobs_};
  std::unique_ptr<Server> server_;
  bool stopped_ = false;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::unique_ptr<HttpConnection> conn_;
};

TEST_F(BlobSenderTest, AWholeBodyIs200WithEveryByte) {
  for (const char* name : {"empty", "one", "small", "edge", "large", "memory"}) {
    SCOPED_TRACE(name);
    const std::string& bytes = blobs_.at(name).bytes;
    auto response = Fetch(name, "");
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(response.Header("content-length"), std::to_string(bytes.size()));
    EXPECT_EQ(response.Header("accept-ranges"), "bytes");
    EXPECT_EQ(response.Header("etag"), std::string("\"") + name + "\"");
    EXPECT_EQ(response.Header("x-cache"), "HIT");
    EXPECT_EQ(response.Header("content-range"), "");
    EXPECT_TRUE(response.body == bytes) << response.body.size() << " bytes";
  }
}

TEST_F(BlobSenderTest, RangesAtTheEdgesOfSmallAndLargeBodies) {
  for (const char* name : {"one", "small", "edge", "large", "memory"}) {
    const std::uint64_t size = blobs_.at(name).bytes.size();
    const std::string last = std::to_string(size - 1);
    ExpectPartial(name, "bytes=0-0", 0, 0);                       // first byte
    ExpectPartial(name, "bytes=" + last + "-" + last, size - 1, size - 1);  // last byte
    ExpectPartial(name, "bytes=" + last + "-", size - 1, size - 1);
    ExpectPartial(name, "bytes=-1", size - 1, size - 1);          // suffix: last byte
    ExpectPartial(name, "bytes=-" + std::to_string(size), 0, size - 1);  // suffix: all
    ExpectPartial(name, "bytes=-" + std::to_string(size + 100), 0, size - 1);  // more than all
    ExpectPartial(name, "bytes=0-", 0, size - 1);  // all, but still a 206
    ExpectPartial(name, "bytes=0-" + std::to_string(size + 1000), 0, size - 1);  // end clamped
    if (size > 2) {
      ExpectPartial(name, "bytes=1-" + std::to_string(size - 2), 1, size - 2);  // inner
    }
  }
  // Across sendfile's steps and the one-write limit.
  ExpectPartial("large", "bytes=65535-65537", 65535, 65537);
  ExpectPartial("large", "bytes=1000-1049575", 1000, 1049575);  // 1 MiB + 1000 in the middle
  ExpectPartial("edge", "bytes=1-", 1, 64 * 1024 - 1);
}

TEST_F(BlobSenderTest, ARangeBeyondTheEndIs416WithTheSize) {
  for (const char* name : {"empty", "one", "small", "large", "memory"}) {
    const std::uint64_t size = blobs_.at(name).bytes.size();
    ExpectUnsatisfiable(name, "bytes=" + std::to_string(size) + "-");
    ExpectUnsatisfiable(name, "bytes=" + std::to_string(size) + "-" + std::to_string(size + 10));
    ExpectUnsatisfiable(name, "bytes=" + std::to_string(size + 1000) + "-");
    ExpectUnsatisfiable(name, "bytes=-0");
    ExpectUnsatisfiable(name, "bytes=5-2");     // malformed: last before first
    ExpectUnsatisfiable(name, "items=0-1");     // another unit
  }
  ExpectUnsatisfiable("empty", "bytes=0-0");
  ExpectUnsatisfiable("empty", "bytes=-5");
  // The connection is still good after each of them.
  ExpectPartial("small", "bytes=0-9", 0, 9);
}

TEST_F(BlobSenderTest, SeveralRangesAreOneMultipartByterangesBody) {
  for (const char* name : {"small", "large"}) {
    SCOPED_TRACE(name);
    const std::string& bytes = blobs_.at(name).bytes;
    const std::uint64_t size = bytes.size();
    const std::string range =
        "bytes=0-0, " + std::to_string(size - 1) + "-" + std::to_string(size - 1) + ",-3,100-199";
    auto response = Fetch(name, range);
    ASSERT_EQ(response.status, 206u);
    EXPECT_EQ(response.Header("content-range"), "");
    const std::string type = response.Header("content-type");
    ASSERT_TRUE(type.starts_with("multipart/byteranges; boundary=")) << type;
    const std::string boundary = type.substr(type.find('=') + 1);
    EXPECT_FALSE(boundary.empty());
    EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
    EXPECT_EQ(bytes.find(boundary), std::string::npos);
    auto parts = ParseMultipart(response.body, boundary);
    ASSERT_TRUE(parts) << response.body.substr(0, 300);
    ASSERT_EQ(parts->size(), 4u);
    const std::pair<std::uint64_t, std::uint64_t> spans[] = {
        {0, 0}, {size - 1, size - 1}, {size - 3, size - 1}, {100, 199}};
    for (std::size_t i = 0; i < 4; ++i) {
      const auto [first, last] = spans[i];
      const Part& part = (*parts)[i];
      EXPECT_EQ(part.content_type, "application/octet-stream") << i;
      EXPECT_EQ(part.content_range, "bytes " + std::to_string(first) + "-" +
                                        std::to_string(last) + "/" + std::to_string(size))
          << i;
      EXPECT_TRUE(part.bytes == bytes.substr(first, last - first + 1)) << i;
    }
  }
  // Two boundaries differ: each answer gets a fresh one.
  auto a = Fetch("small", "bytes=0-0,2-2");
  auto b = Fetch("small", "bytes=0-0,2-2");
  EXPECT_NE(a.Header("content-type"), b.Header("content-type"));
}

TEST_F(BlobSenderTest, UnsatisfiableMembersOfAListAreDropped) {
  // One satisfiable member left: a plain 206, not multipart.
  const std::uint64_t size = blobs_.at("small").bytes.size();
  ExpectPartial("small", "bytes=" + std::to_string(size + 5) + "-,10-19", 10, 19);
  ExpectUnsatisfiable("small",
                      "bytes=" + std::to_string(size) + "-," + std::to_string(size + 1) + "-");
}

TEST_F(BlobSenderTest, HeadAnswersTheHeadOfTheSameGet) {
  for (const char* name : {"empty", "small", "large", "memory"}) {
    SCOPED_TRACE(name);
    const std::uint64_t size = blobs_.at(name).bytes.size();
    auto whole = Fetch(name, "", "HEAD");
    EXPECT_EQ(whole.status, 200u);
    EXPECT_EQ(whole.Header("content-length"), std::to_string(size));
    EXPECT_EQ(whole.Header("accept-ranges"), "bytes");
    EXPECT_TRUE(whole.body.empty());
    if (size > 0) {
      auto ranged = Fetch(name, "bytes=-1", "HEAD");
      EXPECT_EQ(ranged.status, 206u);
      EXPECT_EQ(ranged.Header("content-length"), "1");
      EXPECT_EQ(ranged.Header("content-range"), "bytes " + std::to_string(size - 1) + "-" +
                                                    std::to_string(size - 1) + "/" +
                                                    std::to_string(size));
      EXPECT_TRUE(ranged.body.empty());
    }
    auto beyond = Fetch(name, "bytes=" + std::to_string(size) + "-", "HEAD");
    EXPECT_EQ(beyond.status, 416u);
    EXPECT_EQ(beyond.Header("content-range"), "bytes */" + std::to_string(size));
  }
  // Several ranges: the length of the multipart body the GET sends.
  const std::string ranges = "bytes=0-0,-1";
  const std::string multipart_length = Fetch("small", ranges, "HEAD").Header("content-length");
  const auto multipart = Fetch("small", ranges);
  EXPECT_EQ(multipart_length, std::to_string(multipart.body.size()));
  // The connection carried no stray body bytes: a GET after the HEADs parses.
  ExpectPartial("large", "bytes=0-9", 0, 9);
  // SendBlob counts no body bytes for a HEAD (the count feeds the metrics).
  StopServer();
  EXPECT_EQ(handler_.sent_.load(), multipart.body.size() + 10u);
}

// A stored file shorter than the size it was committed with (damaged on
// disk): the client must see a cut transfer, never a short body that looks
// complete, and never bytes past what the file has.
TEST_F(BlobSenderTest, AFileShorterThanItsSizeIsCutNotPadded) {
  for (const char* name : {"short-large", "short-small"}) {
    SCOPED_TRACE(name);
    const int errors_before = handler_.read_errors_.load();
    auto conn = HttpConnection::Connect("127.0.0.1", port_);
    ASSERT_TRUE(conn);
    ASSERT_TRUE(conn->SendRaw(std::string("GET /") + name +
                              " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    auto [data, orderly] = conn->ReadUntilClose(std::chrono::seconds(10));
    EXPECT_TRUE(orderly);  // FIN, not RST
    // Either way SendBlob tells its caller that the file is unreadable (the
    // proxy quarantines the blob).
    EXPECT_EQ(handler_.read_errors_.load(), errors_before + 1);
    if (std::string_view(name) == "short-small") {
      // Read before anything is sent: the caller answers instead, and not
      // one of the file's bytes goes out under its Content-Length.
      EXPECT_TRUE(data.starts_with("HTTP/1.1 503")) << data.substr(0, 200);
      EXPECT_EQ(data.find(blobs_.at(name).bytes.substr(0, 16)), std::string::npos);
      continue;
    }
    const std::size_t head_end = data.find("\r\n\r\n");
    ASSERT_NE(head_end, std::string::npos) << data.substr(0, 200);
    const std::string body = data.substr(head_end + 4);
    EXPECT_NE(data.find("Content-Length: " + std::to_string(blobs_.at(name).claimed_size)),
              std::string::npos);
    EXPECT_LT(body.size(), blobs_.at(name).claimed_size);
    EXPECT_TRUE(blobs_.at(name).bytes.starts_with(body));
  }
}

}  // namespace
}  // namespace hubcache::proxy
