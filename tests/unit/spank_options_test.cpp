// The SPANK plugin's option rules, Pyxis-compatible (COMPAT.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "deepops/error.hpp"
#include "job_options.hpp"

namespace deepops::spank {
namespace {
namespace fs = std::filesystem;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const EnvLookup kNoEnv = env_of({});

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()) + " | " + e.hint();
  }
  return "(no error)";
}

TEST(ContainerMounts, PyxisForms) {
  auto m =
      parse_container_mounts("/data,/scratch:/s:ro+rprivate,tmpfs:/work,umount:/opt/x", kNoEnv);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].source, "/data");
  EXPECT_EQ(m[0].target, "/data");
  EXPECT_TRUE(m[0].bind && m[0].recursive);
  EXPECT_EQ(m[0].create, MountEntry::Create::automatic);
  EXPECT_EQ(m[1].target, "/s");
  EXPECT_TRUE(m[1].read_only);
  EXPECT_EQ(m[2].type, "tmpfs");
  EXPECT_FALSE(m[2].bind);
  EXPECT_EQ(m[2].target, "/work");
  EXPECT_TRUE(m[3].detach);
  EXPECT_EQ(m[3].target, "/opt/x");
}

TEST(ContainerMounts, EscapesAndVariables) {
  auto m = parse_container_mounts("${HOME}/my\\040data:/in\\040here", env_of({{"HOME", "/h/u"}}));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].source, "/h/u/my data");
  EXPECT_EQ(m[0].target, "/in here");
}

TEST(ContainerMounts, Refusals) {
  EXPECT_NE(error_of([] { parse_container_mounts(":/x", kNoEnv); }).find("SRC[:DST[:FLAGS]]"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_container_mounts("/a:/../etc", kNoEnv); }).find(".."),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_container_mounts("rel:/x", kNoEnv); }).find("absolute"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_container_mounts("/a:/b:x-evil", kNoEnv); }).find("x-evil"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_container_mounts("/a:/b:c:d", kNoEnv); }).find("SRC"),
            std::string::npos);
}

TEST(ContainerName, Modes) {
  EXPECT_EQ(parse_container_name("dev").mode, ContainerRequest::NameMode::automatic);
  EXPECT_EQ(parse_container_name("dev:create").mode, ContainerRequest::NameMode::create);
  EXPECT_EQ(parse_container_name("dev:exec").mode, ContainerRequest::NameMode::exec);
  EXPECT_EQ(parse_container_name("dev:no_exec").mode, ContainerRequest::NameMode::no_exec);
  EXPECT_EQ(parse_container_name("dev:no_exec").name, "dev");
  EXPECT_NE(error_of([] { parse_container_name("dev:sometimes"); }).find("unknown mode"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_container_name("../x"); }).find("invalid name"), std::string::npos);
  EXPECT_NE(error_of([] { parse_container_name(":auto"); }).find("invalid name"),
            std::string::npos);
}

TEST(ApplyOption, EveryOptionHasAnEffect) {
  ContainerRequest r;
  apply_option(r, "container-image", "nvcr.io/nvidia/pytorch:24.05-py3", kNoEnv);
  apply_option(r, "container-mounts", "/data", kNoEnv);
  apply_option(r, "container-workdir", "/work//dir/", kNoEnv);
  apply_option(r, "container-name", "dev:exec", kNoEnv);
  apply_option(r, "container-save", "/tmp/out.sqsh", kNoEnv);
  apply_option(r, "no-container-mount-home", nullptr, kNoEnv);
  apply_option(r, "container-remap-root", nullptr, kNoEnv);
  apply_option(r, "container-entrypoint", nullptr, kNoEnv);
  apply_option(r, "container-entrypoint-log", nullptr, kNoEnv);
  apply_option(r, "container-writable", nullptr, kNoEnv);
  apply_option(r, "container-env", "LANG,NCCL_DEBUG", kNoEnv);
  apply_option(r, "container-unshare", "net,uts", kNoEnv);
  EXPECT_EQ(r.image, "nvcr.io/nvidia/pytorch:24.05-py3");
  EXPECT_EQ(r.mounts.size(), 1u);
  EXPECT_EQ(r.workdir, "/work/dir");
  ASSERT_TRUE(r.name.has_value());
  EXPECT_EQ(r.name->name, "dev");
  EXPECT_EQ(r.save, "/tmp/out.sqsh");
  EXPECT_EQ(r.mount_home, false);
  EXPECT_EQ(r.remap_root, true);
  EXPECT_EQ(r.entrypoint, true);
  EXPECT_TRUE(r.entrypoint_log);
  EXPECT_EQ(r.writable, true);
  EXPECT_EQ(r.env_names, (std::vector<std::string>{"LANG", "NCCL_DEBUG"}));
  EXPECT_TRUE(r.unshare_net && r.unshare_uts && !r.unshare_ipc);
  EXPECT_TRUE(r.wants_container());
  apply_option(r, "container-readonly", nullptr, kNoEnv);
  EXPECT_EQ(r.writable, false);
}

TEST(ApplyOption, ErrorsNameTheOption) {
  ContainerRequest r;
  EXPECT_NE(error_of([&] {
              apply_option(r, "container-image", "UPPER/Case", kNoEnv);
            }).find("--container-image"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              apply_option(r, "container-save", "/tmp/dir/", kNoEnv);
            }).find("--container-save"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              apply_option(r, "container-unshare", "pid", kNoEnv);
            }).find("unknown namespace 'pid'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              apply_option(r, "container-env", "A-B", kNoEnv);
            }).find("invalid variable name"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_option(r, "container-workdir", "rel", kNoEnv); }).find("absolute"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_option(r, "container-image", "", kNoEnv); }).find("needs a value"),
            std::string::npos);
}

TEST(ApplyEnvironment, VariablesFillWhatTheCommandLineLeft) {
  ContainerRequest r;
  apply_option(r, "container-image", "ubuntu:22.04", kNoEnv);
  auto env = env_of({{"PYXIS_CONTAINER_IMAGE", "debian:12"},
                     {"PYXIS_CONTAINER_WORKDIR", "/w"},
                     {"PYXIS_CONTAINER_REMAP_ROOT", "yes"},
                     {"PYXIS_CONTAINER_MOUNT_HOME", "0"},
                     {"DEEPOPS_CONTAINER_WORKDIR", "/deepops-wins"}});
  apply_environment(r, {"container-image"}, env);
  EXPECT_EQ(r.image, "ubuntu:22.04");  // the command line wins
  EXPECT_EQ(r.workdir, "/deepops-wins");
  EXPECT_EQ(r.remap_root, true);
  EXPECT_EQ(r.mount_home, false);
  ContainerRequest flags;
  apply_environment(flags, {"no-container-remap-root"},
                    env_of({{"PYXIS_CONTAINER_REMAP_ROOT", "1"}}));
  EXPECT_FALSE(flags.remap_root.has_value());  // --no-container-remap-root was given
  EXPECT_NE(error_of([] {
              ContainerRequest x;
              apply_environment(x, {}, env_of({{"PYXIS_CONTAINER_REMAP_ROOT", "maybe"}}));
            }).find("yes/no"),
            std::string::npos);
}

class SubmitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/spank-opts.XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "img.sqsh") << "x";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SubmitTest, AFileNamedWithoutDotSlashIsExplained) {
  ContainerRequest r;
  r.image = "img.sqsh";
  std::string e = error_of([&] { validate_on_submit(r, dir_); });
  EXPECT_NE(e.find("looks like a squashfs file"), std::string::npos) << e;
  EXPECT_NE(e.find("./img.sqsh"), std::string::npos) << e;
  // A file without the suffix would be read as a Docker Hub name: said too.
  std::ofstream(dir_ / "pytorch") << "x";
  r.image = "pytorch";
  e = error_of([&] { validate_on_submit(r, dir_); });
  EXPECT_NE(e.find("looks like a file"), std::string::npos) << e;
  EXPECT_NE(e.find("./pytorch"), std::string::npos) << e;
  r.image = "./img.sqsh";
  EXPECT_EQ(error_of([&] { validate_on_submit(r, dir_); }), "(no error)");
  r.image = "./missing.sqsh";
  EXPECT_NE(error_of([&] { validate_on_submit(r, dir_); }).find("cannot read"), std::string::npos);
  r.image = "ubuntu:22.04";
  EXPECT_EQ(error_of([&] { validate_on_submit(r, dir_); }), "(no error)");
}

TEST_F(SubmitTest, AMissingMountSourceIsAnError) {
  ContainerRequest r;
  r.mounts = parse_container_mounts((dir_ / "nope").string() + ":/x,tmpfs:/t", kNoEnv);
  EXPECT_NE(error_of([&] { validate_on_submit(r, dir_); }).find("does not exist"),
            std::string::npos);
  r.mounts = parse_container_mounts(dir_.string() + ":/x,tmpfs:/t", kNoEnv);
  EXPECT_EQ(error_of([&] { validate_on_submit(r, dir_); }), "(no error)");
}

TEST(Plugstack, KeysAndErrors) {
  auto c = parse_plugstack_args({"runtime_path=/run/deepops", "execute_entrypoint=1",
                                 "container_scope=job", "sbatch_support=0", "importer=x"});
  EXPECT_EQ(c.runtime_path, "/run/deepops");
  EXPECT_TRUE(c.execute_entrypoint);
  EXPECT_TRUE(c.job_scope);
  EXPECT_FALSE(c.sbatch_support);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("importer"), std::string::npos);
  EXPECT_NE(error_of([] { parse_plugstack_args({"runtime_dir=/x"}); }).find("unknown key"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_plugstack_args({"container_scope=node"}); }).find("job or global"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_plugstack_args({"runtime_path=rel"}); }).find("absolute"),
            std::string::npos);
  EXPECT_EQ(parse_plugstack_args({"sysconf_dir=/etc/site/deepops"}).sysconf_dir,
            "/etc/site/deepops");
  EXPECT_NE(error_of([] { parse_plugstack_args({"sysconf_dir=etc"}); }).find("absolute"),
            std::string::npos);
}

}  // namespace
}  // namespace deepops::spank
