#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace deepops::test {

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed by a signal
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved as written
};

// Runs argv (no shell), capturing its output. A process that outlives the
// timeout is killed with its whole process group, and timed_out is set: a
// hung srun fails its test instead of hanging the suite.
ProcessResult run_process(const std::vector<std::string>& argv,
                          std::chrono::seconds timeout = std::chrono::seconds(120));

}  // namespace deepops::test
