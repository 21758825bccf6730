// A program run with its output captured: what came out, how it ended, and
// nothing left behind.
#include "util/child_process.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

namespace deepops {
namespace {

TEST(ChildProcess, CapturesStdoutAndTheExitStatus) {
  const CapturedRun run = run_capturing_stdout({"sh", "-c", "echo out; exit 3"}, 1024);
  EXPECT_EQ(run.out, "out\n");
  EXPECT_EQ(run.exit_status, 3);
  EXPECT_FALSE(run.truncated);
}

TEST(ChildProcess, StdoutIsBoundedAndTheRestDrained) {
  const CapturedRun run = run_capturing_stdout({"sh", "-c", "yes | head -c 100000"}, 10);
  EXPECT_EQ(run.out.size(), 10u);
  EXPECT_TRUE(run.truncated);
  EXPECT_EQ(run.exit_status, 0);
}

TEST(ChildProcess, KeepsTheEndOfStderrAndTakesAnEnvironment) {
  CaptureOptions options;
  options.capture_stderr = true;
  options.max_error = 8;
  options.env = std::vector<std::string>{"GREETING=hi", "PATH=/usr/bin:/bin"};
  const CapturedRun run =
      run_captured({"sh", "-c", "echo $GREETING; echo 0123456789abcdef >&2"}, options);
  EXPECT_EQ(run.out, "hi\n");
  EXPECT_EQ(run.err, "9abcdef\n");
}

TEST(ChildProcess, ASignalIs128PlusItsNumberAndAMissingProgram127) {
  EXPECT_EQ(run_capturing_stdout({"sh", "-c", "kill -TERM $$"}, 16).exit_status, 128 + 15);
  CaptureOptions options;
  options.capture_stderr = true;
  const CapturedRun missing = run_captured({"/no/such/program"}, options);
  EXPECT_EQ(missing.exit_status, 127);
  EXPECT_NE(missing.err.find("cannot run /no/such/program"), std::string::npos);
}

}  // namespace
}  // namespace deepops
