// The site's hooks (hooks.d), run by run_admin_hooks: small shell scripts
// written into the test's folder, each leaving what it saw in a file there.
#include "container/admin_hooks.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "error_matchers.hpp"
#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;
using Environ = std::vector<std::pair<std::string, std::string>>;

// Failures of the hooks and of their output: any code, as long as the
// message says which hook or file.
const std::optional<Errc> kErrorCode = std::nullopt;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AdminHooksTest : public test::FolderTest {
 protected:
  fs::path rootfs = root / "rootfs";
  fs::path scratch = root / "scratch";
  std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"}};

  void SetUp() override {
    fs::create_directories(rootfs);
    fs::create_directories(scratch);
  }

  // A /bin/sh script named `name` in the test's folder, with `mode`.
  fs::path hook(const std::string& name, const std::string& body, mode_t mode = 0755) {
    fs::path p = root / "hooks" / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "#!/bin/sh\n" << body;
    EXPECT_EQ(chmod(p.c_str(), mode), 0) << p;
    return p;
  }

  AdminHookOutput run(const std::vector<fs::path>& hooks, int timeout_s = 120) {
    return run_admin_hooks(hooks, rootfs, scratch, env, timeout_s);
  }

  // What run(hooks) throws; a test failure when it throws nothing.
  std::string error_of_run(const std::vector<fs::path>& hooks, int timeout_s = 120) {
    return testing::error_of([&] { run(hooks, timeout_s); }, kErrorCode);
  }
};

TEST_F(AdminHooksTest, HooksRunInTheGivenOrder) {
  const fs::path order = root / "order";
  // Given against their names' order: the list's order is the one kept.
  auto second = hook("a-second", "echo a-second >> '" + order.string() + "'\n");
  auto first = hook("b-first", "echo b-first >> '" + order.string() + "'\n");
  auto third = hook("c-third", "echo c-third >> '" + order.string() + "'\n");
  run({first, second, third});
  EXPECT_EQ(read_text(order), "b-first\na-second\nc-third\n");
}

TEST_F(AdminHooksTest, AHookSeesEnrootsVariablesTheirTwinsAndTheGivenEnvironment) {
  const fs::path seen = root / "seen";
  env["SITE_SETTING"] = "some value";
  auto h = hook("env",
                "printf '%s\\n' \"PID=$ENROOT_PID\" \"DEEPOPS_PID=$DEEPOPS_PID\" "
                "\"ROOTFS=$ENROOT_ROOTFS\" \"DEEPOPS_ROOTFS=$DEEPOPS_ROOTFS\" "
                "\"MOUNTS=$ENROOT_MOUNTS\" \"DEEPOPS_MOUNTS=$DEEPOPS_MOUNTS\" "
                "\"ENVIRON=$ENROOT_ENVIRON\" \"DEEPOPS_ENVIRON=$DEEPOPS_ENVIRON\" "
                "\"SITE_SETTING=$SITE_SETTING\" > '" +
                    seen.string() + "'\n");
  run({h});
  std::istringstream lines(read_text(seen));
  std::map<std::string, std::string> got;
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    ASSERT_NE(eq, std::string::npos) << line;
    got[line.substr(0, eq)] = line.substr(eq + 1);
  }
  EXPECT_EQ(got["PID"], std::to_string(getpid()));
  EXPECT_EQ(got["ROOTFS"], rootfs.string());
  EXPECT_FALSE(got["MOUNTS"].empty());
  EXPECT_FALSE(got["ENVIRON"].empty());
  EXPECT_NE(got["MOUNTS"], got["ENVIRON"]);
  for (const char* name : {"PID", "ROOTFS", "MOUNTS", "ENVIRON"}) {
    EXPECT_EQ(got[std::string("DEEPOPS_") + name], got[name]) << name;
  }
  EXPECT_EQ(got["SITE_SETTING"], "some value");
}

TEST_F(AdminHooksTest, MountsAndEnvironLinesComeBackParsedInHookOrder) {
  env["WHO"] = "world";
  auto first = hook("first",
                    "echo '/host/one /one none bind' >> \"$ENROOT_MOUNTS\"\n"
                    "echo 'FIRST=1' >> \"$ENROOT_ENVIRON\"\n");
  auto second = hook("second",
                     "echo '# a comment' >> \"$DEEPOPS_MOUNTS\"\n"
                     "echo '/host/two /two/./sub none bind,ro' >> \"$DEEPOPS_MOUNTS\"\n"
                     "echo 'export GREETING=\"hello ${WHO}\"' >> \"$DEEPOPS_ENVIRON\"\n");
  AdminHookOutput out = run({first, second});
  ASSERT_EQ(out.mounts.size(), 2u);
  EXPECT_EQ(out.mounts[0].source, "/host/one");
  EXPECT_EQ(out.mounts[0].target, "/one");
  EXPECT_TRUE(out.mounts[0].bind);
  EXPECT_FALSE(out.mounts[0].read_only);
  EXPECT_EQ(out.mounts[1].source, "/host/two");
  EXPECT_EQ(out.mounts[1].target, "/two/sub");
  EXPECT_TRUE(out.mounts[1].bind);
  EXPECT_TRUE(out.mounts[1].read_only);
  EXPECT_EQ(out.environ, (Environ{{"FIRST", "1"}, {"GREETING", "hello world"}}));
}

TEST_F(AdminHooksTest, NoHooksAskForNothing) {
  AdminHookOutput out = run({});
  EXPECT_TRUE(out.mounts.empty());
  EXPECT_TRUE(out.environ.empty());
}

TEST_F(AdminHooksTest, AMountTargetWithDotDotIsAnErrorNamingTheHooksMounts) {
  auto h = hook("climb", "echo '/host/x /x/../../etc none bind' >> \"$ENROOT_MOUNTS\"\n");
  EXPECT_ERROR_MENTIONS(run({h}), "hook mounts (ENROOT_MOUNTS)", "'..'");
}

TEST_F(AdminHooksTest, ABadEnvironLineIsAnErrorNamingTheHooksEnviron) {
  auto h = hook("environ", "echo 'not a line' >> \"$ENROOT_ENVIRON\"\n");
  EXPECT_ERROR_MENTIONS(run({h}), "hook environ (ENROOT_ENVIRON)", "not a line");
}

TEST_F(AdminHooksTest, AFailingHookIsAnErrorNamingItWithTheEndOfItsOutput) {
  const fs::path later_ran = root / "later-ran";
  auto failing = hook("failing",
                      "echo FIRST-MARKER\n"
                      "i=0\n"
                      "while [ $i -lt 500 ]; do echo \"filler line number $i\"; i=$((i+1)); done\n"
                      "echo LAST-MARKER >&2\n"
                      "exit 3\n");
  auto later = hook("later", "touch '" + later_ran.string() + "'\n");
  const std::string message = error_of_run({failing, later});
  EXPECT_NE(message.find(failing.string()), std::string::npos) << message;
  EXPECT_NE(message.find("exited with status 3"), std::string::npos) << message;
  EXPECT_NE(message.find("LAST-MARKER"), std::string::npos) << message;
  // Its end only: the first of some 12 kB of output is not kept.
  EXPECT_EQ(message.find("FIRST-MARKER"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(later_ran)) << "a hook after the failing one ran";
}

TEST_F(AdminHooksTest, AHookKilledByASignalIsAnErrorNamingIt) {
  auto h = hook("killed", "echo about to die\nkill -KILL $$\n");
  EXPECT_ERROR_MENTIONS(run({h}), h.string(), "killed by signal 9", "about to die");
}

TEST_F(AdminHooksTest, AHookThatCannotBeExecutedIsAnErrorNamingIt) {
  auto h = hook("not-executable", "exit 0\n", 0644);
  EXPECT_ERROR_MENTIONS(run({h}), h.string(), "cannot execute");
}

TEST_F(AdminHooksTest, AHookPastItsTimeoutIsKilledAndNamed) {
  const fs::path pid_file = root / "hook.pid";
  auto h = hook("slow", "echo $$ > '" + pid_file.string() + ".tmp' && mv '" + pid_file.string() +
                            ".tmp' '" + pid_file.string() + "'\nexec sleep 30\n");
  EXPECT_ERROR_MENTIONS(run({h}, 1), h.string(), "ran longer than 1 s");
  // The hook wrote its pid before sleeping (the write is atomic, by rename).
  std::ifstream in(pid_file);
  pid_t pid = 0;
  ASSERT_TRUE(in >> pid) << "the hook wrote no pid";
  ASSERT_GT(pid, 0);
  // Killed and reaped before run_admin_hooks returned: nothing to wait for.
  errno = 0;
  EXPECT_EQ(kill(pid, 0), -1) << "hook process " << pid << " still exists";
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace deepops
