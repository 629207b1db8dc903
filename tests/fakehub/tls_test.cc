// TLS: both listeners serve https with the throwaway CA, and an OpenSSL
// client that verifies the peer and the host name accepts them.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/asio.h"
#include "core/url.h"
#include "store/digest.h"
#include "tests/fakehub/fake_hub.h"

namespace hubcache::fakehub {
namespace {

namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct TlsResult {
  bool ok = false;
  std::string error;
  unsigned status = 0;
  http::response<http::string_body> response;
};

// One request over TLS with verify_peer and a host name check against
// `verify_name`; `ca_file` empty means the system store.
TlsResult TlsRequest(std::uint16_t port, const std::string& ca_file, const std::string& verify_name,
                     const std::string& method, const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  TlsResult out;
  net::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  ErrorCode ec;
  if (ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
  } else {
    ctx.load_verify_file(ca_file, ec);
  }
  if (ec) {
    out.error = "verify paths: " + ec.message();
    return out;
  }
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  stream.set_verify_callback(ssl::host_name_verification(verify_name));
  // SNI carries names only, never IP literals.
  if (verify_name.find_first_not_of("0123456789.:") != std::string::npos) {
    SSL_set_tlsext_host_name(stream.native_handle(), verify_name.c_str());
  }
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(stream).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                                          ec);
  if (ec) {
    out.error = "connect: " + ec.message();
    return out;
  }
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) {
    out.error = "handshake: " + ec.message();
    return out;
  }
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) req.set(name, value);
  http::write(stream, req, ec);
  if (ec) {
    out.error = "write: " + ec.message();
    return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ULL << 30);
  if (method == "HEAD") parser.skip(true);
  http::read(stream, buffer, parser, ec);
  if (ec) {
    out.error = "read: " + ec.message();
    return out;
  }
  out.ok = true;
  out.response = parser.release();
  out.status = out.response.result_int();
  return out;
}

std::pair<std::uint16_t, std::string> Split(const std::string& url) {
  const auto parsed = core::ParseUrl(url);
  EXPECT_TRUE(parsed.has_value()) << url;
  if (!parsed) return {0, "/"};
  return {parsed->port, parsed->path + (parsed->has_query ? "?" + parsed->query : "")};
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.tls = true;
    hub_ = FakeHub::Start(options);
  }
  std::unique_ptr<FakeHub> hub_;
};

TEST_F(TlsTest, UrlsAreHttpsAndTheCaFileIsPem) {
  EXPECT_TRUE(hub_->url().starts_with("https://127.0.0.1:"));
  EXPECT_TRUE(hub_->cdn_url().starts_with("https://127.0.0.1:"));
  std::ifstream in(hub_->ca_file());
  std::stringstream pem;
  pem << in.rdbuf();
  EXPECT_TRUE(pem.str().starts_with("-----BEGIN CERTIFICATE-----")) << hub_->ca_file();
}

TEST_F(TlsTest, VerifiedClientDownloadsThroughHubAndCdn) {
  const TlsResult head = TlsRequest(hub_->port(), hub_->ca_file(), "127.0.0.1", "HEAD",
                                    "/org/model/resolve/main/model.safetensors");
  ASSERT_TRUE(head.ok) << head.error;
  EXPECT_EQ(head.status, 302u);
  const std::string location(head.response[http::field::location]);
  EXPECT_TRUE(location.starts_with(hub_->cdn_url() + "/xet-bridge-us/")) << location;

  const auto [port, target] = Split(location);
  for (const std::string name : {"127.0.0.1", "localhost"}) {
    const TlsResult body = TlsRequest(port, hub_->ca_file(), name, "GET", target);
    ASSERT_TRUE(body.ok) << name << ": " << body.error;
    EXPECT_EQ(body.status, 200u);
    EXPECT_EQ(store::HashBytes(store::DigestKind::kSha256, body.response.body()).Hex(),
              hub_->Etag("model", "org/model", "main", "model.safetensors"));
  }
  // Regular files: the relative redirect and the resolve cache over TLS.
  const TlsResult r307 = TlsRequest(hub_->port(), hub_->ca_file(), "localhost", "GET",
                                    "/org/model/resolve/main/config.json");
  ASSERT_TRUE(r307.ok) << r307.error;
  EXPECT_EQ(r307.status, 307u);
  const TlsResult cache = TlsRequest(hub_->port(), hub_->ca_file(), "127.0.0.1", "GET",
                                     std::string(r307.response[http::field::location]));
  ASSERT_TRUE(cache.ok) << cache.error;
  EXPECT_EQ(cache.response.body(), hub_->FileContent("model", "org/model", "main", "config.json"));
}

TEST_F(TlsTest, PaginationLinksUseHttps) {
  const TlsResult page = TlsRequest(hub_->port(), hub_->ca_file(), "127.0.0.1", "GET",
                                    "/api/datasets/org/data/tree/main?recursive=true");
  ASSERT_TRUE(page.ok) << page.error;
  EXPECT_TRUE(std::string(page.response[http::field::link])
                  .starts_with("<https://127.0.0.1:" + std::to_string(hub_->port()) + "/api/"));
}

TEST_F(TlsTest, ClientsWithoutTheCaOrWithAnotherNameAreRefused) {
  const TlsResult system_store =
      TlsRequest(hub_->port(), "", "127.0.0.1", "GET", "/api/models/org/model");
  EXPECT_FALSE(system_store.ok);
  EXPECT_NE(system_store.error.find("handshake"), std::string::npos) << system_store.error;
  const TlsResult wrong_name =
      TlsRequest(hub_->port(), hub_->ca_file(), "example.com", "GET", "/api/models/org/model");
  EXPECT_FALSE(wrong_name.ok);
  EXPECT_NE(wrong_name.error.find("handshake"), std::string::npos) << wrong_name.error;
  const TlsResult wrong_ip =
      TlsRequest(hub_->port(), hub_->ca_file(), "10.0.0.1", "GET", "/api/models/org/model");
  EXPECT_FALSE(wrong_ip.ok);
}

TEST(TlsLifetimeTest, CaDirectoryIsRemovedWithTheHub) {
  std::string ca_file;
  {
    Options options;
    options.tls = true;
    auto hub = FakeHub::Start(options);
    ca_file = hub->ca_file();
    EXPECT_TRUE(std::ifstream(ca_file).good());
  }
  EXPECT_FALSE(std::ifstream(ca_file).good());
}

TEST(TlsLifetimeTest, PlainHubHasNoCaFile) {
  auto hub = FakeHub::Start(Options{});
  EXPECT_EQ(hub->ca_file(), "");
  EXPECT_TRUE(hub->url().starts_with("http://127.0.0.1:"));
}

}  // namespace
}  // namespace hubcache::fakehub
