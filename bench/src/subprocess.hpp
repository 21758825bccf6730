#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace deepops::bench {

// A child process whose stdout and stderr are kept in memory files: started
// now, read when it ends. Killed (with its process group) if destroyed while
// running.
class Subprocess {
 public:
  // Throws std::runtime_error when the program cannot be started.
  explicit Subprocess(const std::vector<std::string>& argv);
  Subprocess(Subprocess&& o) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  // Waits until it exits or `deadline` passes (then kills it: exit code 124)
  // or stop_all() is called (kills it: 130). Returns the exit code (128+N for
  // signal N).
  int wait(std::chrono::steady_clock::time_point deadline);
  std::string out() const;
  std::string err() const;

  // Async-signal-safe: every wait() kills its child and returns 130. For a
  // SIGINT/SIGTERM handler, so that no srun outlives its driver.
  static void stop_all();

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
};

// Runs `argv` to the end (at most `timeout`) and returns its stdout; throws
// std::runtime_error with its stderr when it fails.
std::string run_and_read(const std::vector<std::string>& argv, std::chrono::seconds timeout);

}  // namespace deepops::bench
