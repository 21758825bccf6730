// `enroot start --conf`: a real bash runs the script, as Enroot runs it.
#include "enroot/conf_script.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops::enroot {
namespace {
namespace fs = std::filesystem;

EnvLookup no_env() {
  return [](const std::string&) { return std::optional<std::string>(); };
}

fs::path write_script(const deepops::test::TestFolder& dir, const std::string& text) {
  const fs::path p = dir / "conf.sh";
  std::ofstream(p) << text;
  return p;
}

TEST(ConfScript, FunctionsPrintEnvironMountsAndRc) {
  deepops::test::TestFolder dir("conf-script");
  const fs::path script =
      write_script(dir,
                   "#ENROOT_REMAP_ROOT=y\n"
                   "first=$1  # the script gets the command\n"
                   "environ() {\n  echo \"GREETING=hello $first\"\n  echo FOO=bar\n}\n"
                   "mounts() {\n  echo \"/tmp /mnt/tmp none bind,ro\"\n}\n"
                   "rc() {\n  echo from rc\n  exec \"$@\"\n}\n"
                   "hooks() {\n  true\n}\n");
  const ConfScript conf = evaluate_conf_script(script, {"world", "x"}, no_env());
  ASSERT_EQ(conf.environ.size(), 2u);
  EXPECT_EQ(conf.environ[0], (std::pair<std::string, std::string>{"GREETING", "hello world"}));
  ASSERT_EQ(conf.mounts.size(), 1u);
  EXPECT_EQ(conf.mounts[0].target, "/mnt/tmp");
  EXPECT_TRUE(conf.mounts[0].read_only);
  ASSERT_TRUE(conf.rc);
  EXPECT_NE(conf.rc->find("echo from rc"), std::string::npos);
  EXPECT_EQ(conf.rc->find("rc ()"), std::string::npos);  // the body, not the declaration
  EXPECT_TRUE(conf.has_hooks);
}

TEST(ConfScript, AScriptWithoutFunctionsGivesNothing) {
  deepops::test::TestFolder dir("conf-script");
  const ConfScript conf = evaluate_conf_script(write_script(dir, "X=1\n"), {}, no_env());
  EXPECT_TRUE(conf.environ.empty());
  EXPECT_TRUE(conf.mounts.empty());
  EXPECT_FALSE(conf.rc);
  EXPECT_FALSE(conf.has_hooks);
}

TEST(ConfScript, BadBashMissingFilesAndFailuresAreErrors) {
  deepops::test::TestFolder dir("conf-script");
  EXPECT_THROW(evaluate_conf_script(dir / "missing.sh", {}, no_env()), Error);
  EXPECT_THROW(evaluate_conf_script(write_script(dir, "environ() {\n"), {}, no_env()), Error);
  EXPECT_THROW(evaluate_conf_script(write_script(dir, "environ() { false; }\n"), {}, no_env()),
               Error);
}

TEST(ConfScript, OutputSectionsSplitOnlyOnTheMarker) {
  ConfScript conf;
  conf.path = "/c.sh";
  parse_conf_output(conf, "M environ\nA=1\nM mounts\ntmpfs /t tmpfs\nM rc\necho M environ\n", "M",
                    no_env());
  ASSERT_EQ(conf.environ.size(), 1u);
  ASSERT_EQ(conf.mounts.size(), 1u);
  ASSERT_TRUE(conf.rc);
  EXPECT_EQ(*conf.rc, "echo M environ\n");
}

TEST(ConfScript, TheHookSourcesTheScriptAndCallsHooks) {
  deepops::test::TestFolder dir("conf-script");
  ConfScript conf;
  conf.path = dir / "it's.sh";
  const fs::path hook = write_conf_hook(conf, dir.path());
  std::ifstream in(hook);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("source '"), std::string::npos);
  EXPECT_NE(text.find("it'\\''s.sh'"), std::string::npos);
  EXPECT_NE(text.find("\nhooks\n"), std::string::npos);
  EXPECT_TRUE((fs::status(hook).permissions() & fs::perms::owner_exec) != fs::perms::none);
}

}  // namespace
}  // namespace deepops::enroot
