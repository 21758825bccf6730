// What a container runs and with which environment: Docker's ENTRYPOINT/CMD
// rules, and the layering of the caller's, the image's and the user's variables.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "container/container.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

using Argv = std::vector<std::string>;
using Env = std::map<std::string, std::string>;

const std::string kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct ArgvCase {
  std::string name;
  Argv image_entrypoint;
  Argv image_cmd;
  std::optional<std::string> entrypoint;  // --entrypoint
  Argv command;                           // the command line's
  Argv want;
};
void PrintTo(const ArgvCase& c, std::ostream* os) { *os << c.name; }

class ContainerArgv : public ::testing::TestWithParam<ArgvCase> {};

TEST_P(ContainerArgv, FollowsDockerRules) {
  const ArgvCase& c = GetParam();
  ContainerSpec spec;
  spec.image_name = "img";
  spec.image.entrypoint = c.image_entrypoint;
  spec.image.cmd = c.image_cmd;
  spec.entrypoint = c.entrypoint;
  spec.command = c.command;
  EXPECT_EQ(container_argv(spec), c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Docker, ContainerArgv,
    ::testing::Values(
        ArgvCase{"CmdOnly", {}, {"bash"}, std::nullopt, {}, {"bash"}},
        ArgvCase{"EntrypointOnly", {"/init"}, {}, std::nullopt, {}, {"/init"}},
        ArgvCase{"EntrypointPlusCmd",
                 {"/opt/nvidia/entrypoint.sh"},
                 {"python", "-V"},
                 std::nullopt,
                 {},
                 {"/opt/nvidia/entrypoint.sh", "python", "-V"}},
        ArgvCase{"CommandReplacesCmd",
                 {"/entry", "--flag"},
                 {"python", "-V"},
                 std::nullopt,
                 {"nvidia-smi", "-L"},
                 {"/entry", "--flag", "nvidia-smi", "-L"}},
        ArgvCase{"CommandWithoutEntrypoint", {}, {"bash"}, std::nullopt, {"ls", "/"}, {"ls", "/"}},
        ArgvCase{"CommandWithNothingInImage", {}, {}, std::nullopt, {"true"}, {"true"}},
        ArgvCase{"EntrypointFlagReplacesEntrypointAndDropsCmd",
                 {"/entry"},
                 {"python"},
                 std::string("/bin/sh"),
                 {},
                 {"/bin/sh"}},
        ArgvCase{"EntrypointFlagWithCommand",
                 {"/entry"},
                 {"python"},
                 std::string("/bin/sh"),
                 {"-c", "echo hi"},
                 {"/bin/sh", "-c", "echo hi"}},
        ArgvCase{"EmptyEntrypointFlagWithCommand",
                 {"/entry"},
                 {"python"},
                 std::string(""),
                 {"bash", "-l"},
                 {"bash", "-l"}},
        ArgvCase{"EntrypointFlagIsOneWord",
                 {},
                 {},
                 std::string("/usr/bin/env FOO=1"),
                 {},
                 {"/usr/bin/env FOO=1"}},
        ArgvCase{
            "EmptyArgumentsAreKept", {"/e", ""}, {"", "x"}, std::nullopt, {}, {"/e", "", "", "x"}}),
    [](const ::testing::TestParamInfo<ArgvCase>& p) { return p.param.name; });

TEST(ContainerArgvErrors, NothingToRunIsAnErrorNamingTheImage) {
  struct NothingCase {
    Argv image_entrypoint, image_cmd;
    std::optional<std::string> entrypoint;
  };
  const std::vector<NothingCase> cases = {
      {{}, {}, std::nullopt},            // an image without ENTRYPOINT or CMD
      {{"/entry"}, {"cmd"}, ""},         // --entrypoint "" removes both
      {{}, {"cmd"}, ""},                 // CMD goes with the entrypoint
      {{"/entry"}, {}, std::string("")}  //
  };
  for (const auto& c : cases) {
    ContainerSpec spec;
    spec.image_name = "docker://scratch:latest";
    spec.image.entrypoint = c.image_entrypoint;
    spec.image.cmd = c.image_cmd;
    spec.entrypoint = c.entrypoint;
    try {
      container_argv(spec);
      ADD_FAILURE() << "no error for entrypoint '" << c.entrypoint.value_or("(unset)") << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("docker://scratch:latest"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("no ENTRYPOINT or CMD"), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty());
    }
  }
}

// ---- environment

ContainerSpec spec_with_env(std::vector<std::string> image_env) {
  ContainerSpec spec;
  spec.image_name = "img";
  spec.image.env = std::move(image_env);
  return spec;
}

TEST(ContainerEnvironment, LayersHostImageEnvironFilesAndSpec) {
  ContainerSpec spec = spec_with_env({"PATH=/opt/bin:/usr/bin", "A=image", "B=image", "C=image"});
  spec.environ = {{"B", "environ"}, {"C", "environ"}, {"E", "environ"}};
  spec.env = {{"C", "spec"}, {"F", "spec"}};
  const Env host = {{"PATH", "/host/bin"}, {"HOME", "/home/u"}, {"A", "host"}, {"D", "host"}};
  EXPECT_EQ(container_environment(spec, host), (Env{
                                                   {"PATH", "/opt/bin:/usr/bin"},
                                                   {"HOME", "/home/u"},
                                                   {"A", "image"},
                                                   {"B", "environ"},
                                                   {"C", "spec"},
                                                   {"D", "host"},
                                                   {"E", "environ"},
                                                   {"F", "spec"},
                                               }));
}

TEST(ContainerEnvironment, AnImageWithoutPathGetsTheDefaultNotTheHosts) {
  ContainerSpec spec = spec_with_env({"LANG=C.UTF-8"});
  auto env = container_environment(spec, {{"PATH", "/host/only/bin"}, {"USER", "u"}});
  EXPECT_EQ(env["PATH"], kDefaultPath);
  EXPECT_EQ(env["LANG"], "C.UTF-8");
  EXPECT_EQ(env["USER"], "u");

  EXPECT_EQ(container_environment(spec_with_env({}), {})["PATH"], kDefaultPath);
  // A variable that merely ends in PATH is no PATH.
  EXPECT_EQ(container_environment(spec_with_env({"LD_LIBRARY_PATH=/x", "MANPATH=/m"}),
                                  {{"PATH", "/h"}})["PATH"],
            kDefaultPath);
}

TEST(ContainerEnvironment, EnvironFilesAndSpecMayStillSetPath) {
  ContainerSpec spec = spec_with_env({});
  spec.environ = {{"PATH", "/environ/bin"}};
  EXPECT_EQ(container_environment(spec, {{"PATH", "/h"}})["PATH"], "/environ/bin");
  spec.env = {{"PATH", "/spec/bin"}};
  EXPECT_EQ(container_environment(spec, {{"PATH", "/h"}})["PATH"], "/spec/bin");
}

TEST(ContainerEnvironment, ImageEnvEntriesAreSplitAtTheFirstEquals) {
  ContainerSpec spec = spec_with_env({"PATH=/bin", "OPTS=a=b=c", "EMPTY=", "NOEQUALS", "=x"});
  auto env = container_environment(spec, {{"NOEQUALS", "host"}});
  EXPECT_EQ(env["OPTS"], "a=b=c");
  EXPECT_EQ(env.at("EMPTY"), "");
  EXPECT_EQ(env["NOEQUALS"], "host");  // an entry without '=' sets nothing
  EXPECT_EQ(env["PATH"], "/bin");
}

TEST(ContainerEnvironment, LaterEntriesOfALayerWin) {
  ContainerSpec spec = spec_with_env({"PATH=/bin", "A=1", "A=2"});
  spec.environ = {{"B", "1"}, {"B", "2"}};
  spec.env = {{"C", "1"}, {"C", "2"}};
  auto env = container_environment(spec, {});
  EXPECT_EQ(env["A"], "2");
  EXPECT_EQ(env["B"], "2");
  EXPECT_EQ(env["C"], "2");
}

TEST(ContainerEnvironment, HostOnlyVariablesPassThrough) {
  const Env host = {{"SLURM_JOB_ID", "42"}, {"CUDA_VISIBLE_DEVICES", "0,1"}, {"PATH", "/h"}};
  auto env = container_environment(spec_with_env({"PATH=/bin"}), host);
  EXPECT_EQ(env, (Env{{"SLURM_JOB_ID", "42"}, {"CUDA_VISIBLE_DEVICES", "0,1"}, {"PATH", "/bin"}}));
}

}  // namespace
}  // namespace deepops
