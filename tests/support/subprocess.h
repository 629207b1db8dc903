// Subprocess: runs a program for a test, capturing stdout and stderr.
//
// The child gets the test's environment minus every HUBCACHE_* and *_PROXY
// variable (tests must not depend on the machine), plus what the test sets.
// Output is read through pipes with poll(), so waiting for a log line or for
// exit never sleeps blindly and always has a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hubcache::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with argv. Aborts the test binary on spawn failure.
  static std::unique_ptr<Subprocess> Start(
      const std::vector<std::string>& argv,
      const std::map<std::string, std::string>& env = {});
  ~Subprocess();

  // Reads output until stderr contains `needle`. Returns true if it did
  // before `timeout` and before the child closed its stderr.
  bool WaitForStderr(std::string_view needle, std::chrono::milliseconds timeout);
  // Reads whatever the child has written so far, without waiting (a chatty
  // child blocks once its pipe is full).
  void Drain();
  // The same for stdout.
  bool WaitForStdout(std::string_view needle, std::chrono::milliseconds timeout);

  void Signal(int signo);

  // True while the child has not exited (never blocks, never kills).
  bool Running();

  // Waits for exit, reading output meanwhile. Returns the exit status, or
  // 128 + signal number if killed by a signal, or nullopt on timeout (the
  // child is then killed).
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  Subprocess() = default;
  // Reads whatever is available within `timeout`; false once both pipes hit EOF.
  bool Pump(std::chrono::milliseconds timeout);
  bool WaitFor(const std::string& text, std::string_view needle,
               std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> status_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (at most `timeout`) and returns what it did.
RunResult Run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace hubcache::testing
