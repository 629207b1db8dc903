// The systemd integration of `hubcache serve`: the unit file is valid, the
// daemon tells a notification socket READY=1 once it serves, RELOADING=1 and
// READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM; a reload applies
// what can change at run time and names what needs a restart.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/support/temp_dir.h"
#include "tests/support/subprocess.h"

namespace hubcache {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;
using testing::Subprocess;

class SystemdTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // A datagram socket standing in for systemd's notification socket.
  std::string BindNotifySocket() {
    const std::string path = (dir_ / "notify").string();
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return path;
  }

  // The next datagram, or "" after `timeout`.
  std::string NextNotification(std::chrono::milliseconds timeout = seconds(20)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }

  void WriteConfig(const std::string& text) {
    std::ofstream(dir_ / "hubcache.toml") << text;
  }

  testing::TempDir temp_{"hubcache-systemd-test"};
  const fs::path dir_ = temp_.path();
  int fd_ = -1;
};

TEST_F(SystemdTest, UnitFileVerifies) {
  // The installed unit names /usr/local/bin/hubcache; verify it against the
  // binary just built (systemd-analyze checks the executable exists).
  std::ifstream in(std::string(HUBCACHE_SOURCE_DIR) + "/systemd/hubcache.service");
  std::string unit((std::istreambuf_iterator<char>(in)), {});
  ASSERT_NE(unit.find("Type=notify"), std::string::npos);
  ASSERT_NE(unit.find("ExecReload="), std::string::npos);
  unit = std::regex_replace(unit, std::regex("/usr/local/bin/hubcache"), HUBCACHE_BINARY);
  std::ofstream(dir_ / "hubcache.service") << unit;
  auto result = testing::Run({"/usr/bin/systemd-analyze", "verify", (dir_ / "hubcache.service").string()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(result.err, "") << result.err;  // warnings too
}

TEST_F(SystemdTest, ReadyReloadingAndStoppingReachTheNotifySocket) {
  const std::string socket = BindNotifySocket();
  WriteConfig("[log]\nlevel = \"info\"\n");
  auto serve = Subprocess::Start(
      {HUBCACHE_BINARY, "serve", "--listen", "127.0.0.1:0", "--cache-dir",
       (dir_ / "cache").string(), "--config", (dir_ / "hubcache.toml").string()},
      {{"NOTIFY_SOCKET", socket}});
  const std::string ready = NextNotification();
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=serving on 127.0.0.1:"), std::string::npos) << ready;
  ASSERT_TRUE(serve->WaitForStderr("hubcache_started", seconds(20))) << serve->err();

  // A reloadable change and one that needs a restart.
  WriteConfig("[log]\nlevel = \"debug\"\n[cache]\nref_ttl = \"5m\"\n[server]\nmax_connections = 10\n");
  serve->Signal(SIGHUP);
  EXPECT_EQ(NextNotification(), "RELOADING=1");
  EXPECT_EQ(NextNotification(), "READY=1");
  ASSERT_TRUE(serve->WaitForStderr("config_reloaded", seconds(20))) << serve->err();
  EXPECT_NE(serve->err().find("applied=cache.ref_ttl,log.level"), std::string::npos) << serve->err();
  EXPECT_NE(serve->err().find("restart_needed=server.max_connections"), std::string::npos)
      << serve->err();

  // A broken file is refused and the daemon keeps running.
  WriteConfig("[log]\nlevel = \"loud\"\n");
  serve->Signal(SIGHUP);
  EXPECT_EQ(NextNotification(), "RELOADING=1");
  EXPECT_EQ(NextNotification(), "READY=1");
  ASSERT_TRUE(serve->WaitForStderr("reload_failed", seconds(20))) << serve->err();
  EXPECT_TRUE(serve->Running());

  serve->Signal(SIGTERM);
  EXPECT_EQ(NextNotification(), "STOPPING=1");
  EXPECT_EQ(serve->Wait(seconds(30)), 0) << serve->err();
}

}  // namespace
}  // namespace hubcache
