#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace hubcache::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool Hermetic(std::string_view name) {
  if (name.starts_with("HUBCACHE_")) return false;
  for (std::string_view proxy : {"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
                                 "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "all_proxy"}) {
    if (name == proxy) return false;
  }
  return true;
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "subprocess: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

}  // namespace

std::unique_ptr<Subprocess> Subprocess::Start(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || !Hermetic(entry.substr(0, eq))) continue;
    merged.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);

  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) Die("pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::unique_ptr<Subprocess> p(new Subprocess());
  const int rc = ::posix_spawn(&p->pid_, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    errno = rc;
    Die(argp[0]);
  }
  p->out_fd_ = out_pipe[0];
  p->err_fd_ = err_pipe[0];
  ::fcntl(p->out_fd_, F_SETFL, O_NONBLOCK);
  ::fcntl(p->err_fd_, F_SETFL, O_NONBLOCK);
  // Room for thousands of log lines, so that a daemon logging one line per
  // request does not block on a full pipe while the test is busy elsewhere.
  ::fcntl(p->out_fd_, F_SETPIPE_SZ, 1 << 20);
  ::fcntl(p->err_fd_, F_SETPIPE_SZ, 1 << 20);
  return p;
}

Subprocess::~Subprocess() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

bool Subprocess::Pump(std::chrono::milliseconds timeout) {
  pollfd fds[2];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (n == 0) return false;
  const int ready = ::poll(fds, n, static_cast<int>(timeout.count()));
  if (ready <= 0) return true;
  for (int i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    const bool is_out = fds[i].fd == out_fd_;
    char buf[65536];
    const ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
    if (got > 0) {
      (is_out ? out_ : err_).append(buf, static_cast<std::size_t>(got));
    } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
      ::close(fds[i].fd);
      (is_out ? out_fd_ : err_fd_) = -1;
    }
  }
  return out_fd_ >= 0 || err_fd_ >= 0;
}

bool Subprocess::WaitFor(const std::string& text, std::string_view needle,
                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (text.find(needle) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    if (!Pump(left)) return text.find(needle) != std::string::npos;
  }
  return true;
}

void Subprocess::Drain() {
  for (int i = 0; i < 1000; ++i) {
    const std::size_t before = out_.size() + err_.size();
    if (!Pump(std::chrono::milliseconds(0)) || out_.size() + err_.size() == before) return;
  }
}

bool Subprocess::WaitForStderr(std::string_view needle, std::chrono::milliseconds timeout) {
  return WaitFor(err_, needle, timeout);
}

bool Subprocess::WaitForStdout(std::string_view needle, std::chrono::milliseconds timeout) {
  return WaitFor(out_, needle, timeout);
}

bool Subprocess::Running() {
  if (status_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

void Subprocess::Signal(int signo) {
  if (!status_) ::kill(pid_, signo);
}

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = Clock::now() + timeout;
  // The child's exit closes its pipe ends (unless it leaked them to a
  // grandchild), so EOF on both is the exit signal; waitpid confirms.
  while (Clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!Pump(std::min(left, std::chrono::milliseconds(100)))) break;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      while (Pump(std::chrono::milliseconds(0))) {
      }
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
  }
  int status = 0;
  while (Clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
    ::poll(nullptr, 0, 10);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  status_ = 128 + SIGKILL;
  return std::nullopt;
}

RunResult Run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env,
              std::chrono::milliseconds timeout) {
  auto p = Subprocess::Start(argv, env);
  RunResult result;
  result.exit_code = p->Wait(timeout).value_or(-1);
  result.out = p->out();
  result.err = p->err();
  return result;
}

}  // namespace hubcache::testing
