#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace deepops {

// What a program printed, and how it ended.
struct CapturedRun {
  int exit_status = 0;  // its exit code, or 128+N when killed by signal N
  std::string out;      // at most the first `max_output` bytes of stdout
  bool truncated = false;
  std::string err;  // the last `max_error` bytes of stderr, when captured
};

// How run_captured runs the program.
struct CaptureOptions {
  size_t max_output = 1 << 20;
  // Capture stderr too (its last max_error bytes); otherwise it is ours.
  bool capture_stderr = false;
  size_t max_error = 64 * 1024;
  // The program's environment ("NAME=value"); unset: ours.
  std::optional<std::vector<std::string>> env;
};

// Runs argv (argv[0] a path, or a name looked up in PATH) as the caller,
// stdin from /dev/null, stdout captured, stderr captured or shared with
// ours (so that its errors reach the user as it wrote them). Reads until
// the program's pipes close and always waits for it. Throws an Error when
// it cannot be started.
CapturedRun run_captured(const std::vector<std::string>& argv, const CaptureOptions& options);

// The same with stdout alone captured.
CapturedRun run_capturing_stdout(const std::vector<std::string>& argv, size_t max_output);

}  // namespace deepops
