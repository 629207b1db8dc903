// The Hub client through a real HTTP CONNECT proxy (Debian's tinyproxy),
// with and without basic auth, and NO_PROXY bypass.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "proxy/errc.h"
#include "proxy/exchange.h"
#include "proxy/hub_client.h"
#include "proxy/resolve.h"
#include "proxy/server.h"
#include "tests/fakehub/fake_hub.h"
#include "tests/proxy/server_util.h"
#include "tests/support/run_async.h"
#include "tests/support/subprocess.h"

namespace hubcache::proxy {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::RunAsync;

class Hello final : public Handler {
 public:
  net::awaitable<void> Handle(Exchange& exchange) override {
    const auto auth = exchange.request().find(http::field::authorization);
    last_authorization = auth == exchange.request().end() ? "" : std::string(auth->value());
    StringResponse response(http::status::ok, 11);
    response.body() = "through " + std::string(ToStd(exchange.request().target()));
    co_await exchange.Send(std::move(response));
  }
  std::string last_authorization;
};

std::uint16_t FreePort() {
  net::io_context ioc;
  net::ip::tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

class ConnectProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hubcache-tinyproxy-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ServerOptions options;
    options.listen = {"127.0.0.1:0"};
    auto server = Server::Create(ioc_, options, hello_);
    ASSERT_TRUE(server);
    server_ = std::move(*server);
    server_->Start();
    origin_port_ = server_->endpoints().front().port();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    client_.reset();
    if (proxy_) {
      proxy_->Signal(SIGTERM);
      proxy_->Wait(std::chrono::seconds(5));
    }
    if (server_) StopServerGracefully(*server_);
    ioc_.stop();
    thread_.join();
    server_.reset();
    fs::remove_all(dir_);
  }

  // Starts tinyproxy (optionally requiring basic auth) and waits until it
  // accepts connections.
  void StartProxy(const std::string& basic_auth = "") {
    for (int attempt = 0; attempt < 5; ++attempt) {
      proxy_port_ = FreePort();
      std::ofstream(dir_ / "tinyproxy.conf")
          << "Port " << proxy_port_ << "\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
          << "MaxClients 20\nLogLevel Connect\nLogFile \"" << (dir_ / "tinyproxy.log").string()
          << "\"\nPidFile \"" << (dir_ / "tinyproxy.pid").string() << "\"\n"
          << (basic_auth.empty() ? "" : "BasicAuth " + basic_auth + "\n");
      proxy_ = testing::Subprocess::Start(
          {"/usr/bin/tinyproxy", "-d", "-c", (dir_ / "tinyproxy.conf").string()});
      for (int i = 0; i < 200; ++i) {
        net::io_context probe;
        net::ip::tcp::socket socket(probe);
        ErrorCode ec;
        socket.connect({net::ip::make_address("127.0.0.1"), proxy_port_}, ec);
        if (!ec) return;
        if (!proxy_->Running()) break;  // exited (port taken?): try another port
        std::this_thread::sleep_for(milliseconds(10));
      }
      proxy_.reset();
    }
    FAIL() << "tinyproxy did not start";
  }

  HubClient* Client(const std::string& proxy_url, const std::string& no_proxy = "") {
    UpstreamOptions options;
    options.url = OriginUrl("");
    options.proxy = proxy_url;
    options.no_proxy = no_proxy;
    options.max_retries = 0;
    auto client = HubClient::Create(options);
    EXPECT_TRUE(client) << client.error().message();
    client_ = std::move(*client);
    return client_.get();
  }

  std::string ProxyLog() const {
    std::ifstream in(dir_ / "tinyproxy.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string OriginUrl(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(origin_port_) + path;
  }

  fs::path dir_;
  net::io_context ioc_;
  net::io_context client_ioc_;
  Hello hello_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::uint16_t origin_port_ = 0;
  std::uint16_t proxy_port_ = 0;
  std::unique_ptr<testing::Subprocess> proxy_;
  std::unique_ptr<HubClient> client_;
};

TEST_F(ConnectProxyTest, TunnelsThroughTheProxyAndReusesTheTunnel) {
  StartProxy();
  auto* client = Client("http://127.0.0.1:" + std::to_string(proxy_port_));
  for (int i = 0; i < 3; ++i) {
    auto response = RunAsync(client_ioc_, client->Fetch({.url = OriginUrl("/x"), .token = Secret("hf_t")}));
    ASSERT_TRUE(response) << response.error().message();
    EXPECT_EQ(response->body, "through /x");
  }
  // The token went through the tunnel to the origin; the proxy saw only CONNECT.
  EXPECT_EQ(hello_.last_authorization, "Bearer hf_t");
  const std::string log = ProxyLog();
  EXPECT_NE(log.find("CONNECT 127.0.0.1:" + std::to_string(origin_port_)), std::string::npos) << log;
  EXPECT_EQ(client->pool().opened(), 1u);
}

TEST_F(ConnectProxyTest, BasicAuthFromTheProxyUrl) {
  StartProxy("alice s3cret");
  auto* good = Client("http://alice:s3cret@127.0.0.1:" + std::to_string(proxy_port_));
  auto response = RunAsync(client_ioc_, good->Fetch({.url = OriginUrl("/auth")}));
  ASSERT_TRUE(response) << response.error().message();
  EXPECT_EQ(response->body, "through /auth");

  auto* bad = Client("http://alice:wrong@127.0.0.1:" + std::to_string(proxy_port_));
  auto refused = RunAsync(client_ioc_, bad->Fetch({.url = OriginUrl("/auth")}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), Errc::kProxyRefused);
}

TEST_F(ConnectProxyTest, NoProxyHostsGoDirect) {
  StartProxy();
  auto* client = Client("http://127.0.0.1:" + std::to_string(proxy_port_), "localhost, 127.0.0.1");
  auto response = RunAsync(client_ioc_, client->Fetch({.url = OriginUrl("/direct")}));
  ASSERT_TRUE(response) << response.error().message();
  // (The log tags every line CONNECT; a tunnel request reads "Request ... CONNECT host:port".)
  EXPECT_EQ(ProxyLog().find("CONNECT 127.0.0.1:"), std::string::npos) << ProxyLog();
}

TEST_F(ConnectProxyTest, TlsToTheHubAndItsCdnThroughTheTunnel) {
  StartProxy();
  fakehub::Options hub_options;
  hub_options.tls = true;
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub);
  UpstreamOptions options;
  options.url = hub->url();
  options.ca_file = hub->ca_file();
  options.proxy = "http://127.0.0.1:" + std::to_string(proxy_port_);
  auto created = HubClient::Create(options);
  ASSERT_TRUE(created);
  client_ = std::move(*created);
  const std::string commit = hub->Commit("model", "org/model", "main");
  auto file = RunAsync(client_ioc_, ResolveFile(*client_,
                                                hub->url() + "/org/model/resolve/main/model.safetensors",
                                                Secret("hf_user")));
  ASSERT_TRUE(file) << file.error().message();
  auto body = RunAsync(client_ioc_, client_->Fetch({.url = file->download_url}));
  ASSERT_TRUE(body) << body.error().message();
  EXPECT_EQ(body->body, hub->FileContent("model", "org/model", commit, "model.safetensors"));
  const std::string log = ProxyLog();
  EXPECT_NE(log.find("CONNECT 127.0.0.1:" + std::to_string(hub->port())), std::string::npos) << log;
  EXPECT_NE(log.find("CONNECT 127.0.0.1:" + std::to_string(hub->cdn_port())), std::string::npos) << log;
  client_.reset();
}

TEST(ProxySettingsTest, ParsesUrlsAndNoProxyLists) {
  auto none = ProxySettings::Parse("", "x");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_FALSE(ProxySettings::Parse("socks5://p:1", ""));
  auto settings = ProxySettings::Parse("http://us%40r:p%3Ass@proxy:3128", " .internal, Mirror.Example ,[::1]");
  ASSERT_TRUE(settings && *settings);
  EXPECT_EQ((*settings)->authorization.Reveal(), "Basic dXNAcjpwOnNz");  // base64("us@r:p:ss")
  EXPECT_TRUE((*settings)->Bypass("a.b.internal"));
  EXPECT_TRUE((*settings)->Bypass("internal"));
  EXPECT_TRUE((*settings)->Bypass("mirror.example"));
  EXPECT_TRUE((*settings)->Bypass("::1"));
  EXPECT_FALSE((*settings)->Bypass("huggingface.co"));
  EXPECT_FALSE((*settings)->Bypass("notinternal"));
  EXPECT_TRUE((*ProxySettings::Parse("http://p:1", "*"))->Bypass("anything"));
}

}  // namespace
}  // namespace hubcache::proxy
