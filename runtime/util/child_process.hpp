#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace deepops {

// What a program printed on stdout, and how it ended.
struct CapturedRun {
  int exit_status = 0;  // its exit code, or 128+N when killed by signal N
  std::string out;      // at most the first `max_output` bytes of stdout
  bool truncated = false;
};

// Runs argv (argv[0] a path, or a name looked up in PATH) as the caller,
// stdin from /dev/null, stderr shared with ours (so that its errors reach
// the user as it wrote them), stdout captured. Always waits for the child.
// Throws an Error when it cannot be started.
CapturedRun run_capturing_stdout(const std::vector<std::string>& argv, size_t max_output);

}  // namespace deepops
