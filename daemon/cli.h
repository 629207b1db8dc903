// The `hubcache` command line: subcommands, their flags and exit codes.
//
// Exit codes are part of the interface scripts rely on:
//   0 success, 1 runtime failure, 2 usage or configuration error.
#pragma once

namespace hubcache::daemon {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Runs the command line `argv` and returns the process exit code.
int Main(int argc, char** argv);

}  // namespace hubcache::daemon
