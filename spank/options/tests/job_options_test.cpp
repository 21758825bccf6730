// The SPANK plugin's option rules, Pyxis-compatible (spank/README.md, "Pyxis behaviours matched").
#include "job_options.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "util/error.hpp"

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
  EXPECT_NE(error_of([] { parse_container_mounts("rel:/x", kNoEnv); }).find("write ./rel"),
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
  ContainerRequest ro;
  apply_option(ro, "container-readonly", nullptr, kNoEnv);
  EXPECT_EQ(ro.writable, false);
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
  EXPECT_NE(error_of([&] { apply_option(r, "container-image", "", kNoEnv); }).find("needs a value"),
            std::string::npos);
}

TEST(ApplyOption, AnOfflineImageCopyIsRefusedAtSubmitWithBothReadings) {
  ContainerRequest r;
  const std::string message =
      error_of([&] { apply_option(r, "container-image", "oci:latest", kNoEnv); });
  EXPECT_NE(message.find("offline image copy"), std::string::npos) << message;
  apply_option(r, "container-image", "docker://oci:latest", kNoEnv);  // the registry's
  EXPECT_EQ(r.image, "docker://oci:latest");
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
}

// (a) Boolean variables are read as Pyxis's parse_bool reads them: exactly
// 1/true/yes/y or 0/false/no/n; any other value is ignored, not an error.
TEST(ApplyEnvironment, BooleanVariablesAsPyxis) {
  struct Case {
    std::map<std::string, std::string> vars;
    std::optional<bool> writable;
  };
  const std::vector<Case> cases = {
      {{{"PYXIS_CONTAINER_WRITABLE", "0"}}, false},  // ignored before: now read-only
      {{{"PYXIS_CONTAINER_WRITABLE", "n"}}, false},
      {{{"PYXIS_CONTAINER_WRITABLE", "false"}}, false},
      {{{"PYXIS_CONTAINER_WRITABLE", "1"}}, true},
      {{{"PYXIS_CONTAINER_WRITABLE", "y"}}, true},
      {{{"DEEPOPS_CONTAINER_WRITABLE", "0"}}, false},
      {{{"PYXIS_CONTAINER_WRITABLE", "1"}, {"DEEPOPS_CONTAINER_WRITABLE", "no"}}, false},
      {{{"PYXIS_CONTAINER_READONLY", "1"}}, false},
      {{{"PYXIS_CONTAINER_READONLY", "0"}}, true},  // READONLY=0: writable
      {{{"PYXIS_CONTAINER_READONLY", "no"}}, true},
      // WRITABLE wins over READONLY when both are valid.
      {{{"PYXIS_CONTAINER_WRITABLE", "1"}, {"PYXIS_CONTAINER_READONLY", "1"}}, true},
      {{{"PYXIS_CONTAINER_WRITABLE", "0"}, {"PYXIS_CONTAINER_READONLY", "0"}}, false},
      // An invalid WRITABLE is ignored, READONLY then counts.
      {{{"PYXIS_CONTAINER_WRITABLE", "maybe"}, {"PYXIS_CONTAINER_READONLY", "1"}}, false},
      // Case matters and on/off are not Pyxis words: ignored.
      {{{"PYXIS_CONTAINER_WRITABLE", "TRUE"}}, std::nullopt},
      {{{"PYXIS_CONTAINER_WRITABLE", "on"}}, std::nullopt},
      {{{"PYXIS_CONTAINER_READONLY", "Yes"}}, std::nullopt},
      {{{"PYXIS_CONTAINER_WRITABLE", ""}}, std::nullopt},
  };
  for (const auto& c : cases) {
    ContainerRequest r;
    std::string what;
    for (const auto& [k, v] : c.vars) what += k + "=" + v + " ";
    EXPECT_NO_THROW(apply_environment(r, {}, env_of(c.vars))) << what;
    EXPECT_EQ(r.writable, c.writable) << what;
  }
  // The command line wins over both variables.
  for (const char* given : {"container-readonly", "container-writable"}) {
    ContainerRequest r;
    apply_option(r, given, nullptr, kNoEnv);
    apply_environment(r, {given},
                      env_of({{"PYXIS_CONTAINER_WRITABLE", "1"},
                              {"PYXIS_CONTAINER_READONLY", "0"},
                              {"DEEPOPS_CONTAINER_WRITABLE", "0"}}));
    EXPECT_EQ(r.writable, std::string(given) == "container-writable") << given;
  }
}

TEST(ApplyEnvironment, OtherBooleanVariablesAsPyxis) {
  for (const std::string name : {"MOUNT_HOME", "REMAP_ROOT", "ENTRYPOINT"}) {
    auto field = [&](ContainerRequest& r) -> std::optional<bool>& {
      return name == "MOUNT_HOME"   ? r.mount_home
             : name == "REMAP_ROOT" ? r.remap_root
                                    : r.entrypoint;
    };
    for (const auto& [value, want] :
         std::vector<std::pair<std::string, std::optional<bool>>>{{"0", false},
                                                                  {"no", false},
                                                                  {"1", true},
                                                                  {"true", true},
                                                                  {"Y", std::nullopt},
                                                                  {"2", std::nullopt},
                                                                  {"off", std::nullopt}}) {
      ContainerRequest r;
      EXPECT_NO_THROW(apply_environment(r, {}, env_of({{"PYXIS_CONTAINER_" + name, value}})))
          << name << "=" << value;
      EXPECT_EQ(field(r), want) << name << "=" << value;
    }
  }
  ContainerRequest r;
  apply_environment(r, {}, env_of({{"PYXIS_CONTAINER_ENTRYPOINT_LOG", "yes"}}));
  EXPECT_TRUE(r.entrypoint_log);
  ContainerRequest ignored;
  apply_environment(ignored, {}, env_of({{"PYXIS_CONTAINER_ENTRYPOINT_LOG", "sure"}}));
  EXPECT_FALSE(ignored.entrypoint_log);
}

// (b) Opposite flags together are refused, as Pyxis does; the same one twice is fine.
TEST(ApplyOption, OppositeFlagsAreRefused) {
  ContainerRequest r;
  apply_option(r, "container-readonly", nullptr, kNoEnv);
  apply_option(r, "container-readonly", nullptr, kNoEnv);  // Slurm may repeat one
  std::string e = error_of([&] { apply_option(r, "container-writable", nullptr, kNoEnv); });
  EXPECT_NE(e.find("both --container-writable and --container-readonly were specified"),
            std::string::npos)
      << e;
  ContainerRequest w;
  apply_option(w, "container-writable", nullptr, kNoEnv);
  EXPECT_NE(error_of([&] {
              apply_option(w, "container-readonly", nullptr, kNoEnv);
            }).find("both --container-writable and --container-readonly"),
            std::string::npos);
  for (const std::string name :
       {"container-mount-home", "container-remap-root", "container-entrypoint"}) {
    ContainerRequest x;
    apply_option(x, name, nullptr, kNoEnv);
    e = error_of([&] { apply_option(x, "no-" + name, nullptr, kNoEnv); });
    EXPECT_NE(e.find("both --" + name + " and --no-" + name + " were specified"), std::string::npos)
        << e;
  }
}

// (c) An empty name in --container-env is a format error, as in Pyxis.
TEST(ApplyOption, ContainerEnvRefusesEmptyNames) {
  for (const char* value : {"FOO,", ",FOO", "A,,B", ","}) {
    ContainerRequest r;
    std::string e = error_of([&] { apply_option(r, "container-env", value, kNoEnv); });
    EXPECT_NE(e.find("--container-env: invalid format"), std::string::npos) << value << ": " << e;
  }
  ContainerRequest r;
  EXPECT_NE(error_of([&] {
              apply_environment(r, {}, env_of({{"PYXIS_CONTAINER_ENV", "FOO,"}}));
            }).find("invalid format"),
            std::string::npos);
}

// (f) A relative --container-workdir is taken from the container's "/", as
// Pyxis's chdir() after entering the container's mount namespace does.
TEST(ApplyOption, RelativeWorkdirIsFromTheContainerRoot) {
  for (const auto& [value, want] :
       std::vector<std::pair<std::string, std::string>>{{"rel", "/rel"},
                                                        {"./a/b/", "/a/b"},
                                                        {"../", "/"},
                                                        {"..", "/"},
                                                        {"a/../b", "/b"},
                                                        {"/usr/local/../bin", "/usr/bin"},
                                                        {"/../etc", "/etc"},
                                                        {"/work//dir/", "/work/dir"}}) {
    ContainerRequest r;
    apply_option(r, "container-workdir", value.c_str(), kNoEnv);
    EXPECT_EQ(r.workdir, want) << value;
  }
}

// (d) Relative mount sources, as Pyxis's ("./", "../x", ".hidden"): kept
// relative by the parser, then resolved against the job's directory.
TEST(ContainerMounts, RelativeSources) {
  auto m = parse_container_mounts("./:/mnt,../up:/up:ro,.hidden:/h,./d/./e/:./in", kNoEnv);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].source, "./");
  EXPECT_TRUE(is_relative_source(m[0]));
  EXPECT_EQ(m[3].target, "/in");  // a target starting with '.' is from the container's root
  ContainerRequest r;
  r.mounts = m;
  resolve_mount_sources(r, "/home/u/work/");
  EXPECT_EQ(r.mounts[0].source, "/home/u/work");
  EXPECT_EQ(r.mounts[1].source, "/home/u/work/../up");  // ".." left to the kernel
  EXPECT_TRUE(r.mounts[1].read_only);
  EXPECT_EQ(r.mounts[2].source, "/home/u/work/.hidden");
  EXPECT_EQ(r.mounts[3].source, "/home/u/work/d/e");
  // Pyxis refuses a source without '/' or '.' in front.
  std::string e = error_of([] { parse_container_mounts("data:/data", kNoEnv); });
  EXPECT_NE(e.find("'data' must be an absolute path, a relative path starting with '.'"),
            std::string::npos)
      << e;
  // The option, then the job's PWD (as the node sees it), else SLURM_SUBMIT_DIR.
  ContainerRequest opt;
  apply_option(opt, "container-mounts", "./:/mnt", kNoEnv);
  apply_environment(opt, {"container-mounts"}, env_of({{"PWD", "/submit/dir"}}));
  EXPECT_EQ(opt.mounts[0].source, "/submit/dir");
  ContainerRequest via_env;
  apply_environment(
      via_env, {},
      env_of({{"PYXIS_CONTAINER_MOUNTS", "./data:/data"}, {"SLURM_SUBMIT_DIR", "/job/dir"}}));
  ASSERT_EQ(via_env.mounts.size(), 1u);
  EXPECT_EQ(via_env.mounts[0].source, "/job/dir/data");
  ContainerRequest no_dir;
  apply_option(no_dir, "container-mounts", "./x:/x", kNoEnv);
  apply_environment(no_dir, {"container-mounts"}, env_of({{"PWD", "relative"}}));
  EXPECT_EQ(no_dir.mounts[0].source, "./x");  // for validate_on_submit's cwd
}

TEST(ContainerMounts, EmptyEntriesAreRefused) {
  for (const char* value : {"/a:/b,", ",/a", "/a,,/b"}) {
    std::string e = error_of([&] { parse_container_mounts(value, kNoEnv); });
    EXPECT_NE(e.find("invalid format"), std::string::npos) << value << ": " << e;
  }
}

// (e) Every bind flag Pyxis (Enroot) accepts; propagation kept apart.
TEST(ContainerMounts, EveryEnrootFlag) {
  auto one = [](const std::string& flags) {
    auto m = parse_container_mounts("/a:/b:" + flags, kNoEnv);
    EXPECT_EQ(m.size(), 1u);
    return m.at(0);
  };
  auto m = one("unbindable");
  EXPECT_EQ(m.propagation, static_cast<unsigned long>(MS_UNBINDABLE));
  EXPECT_EQ(m.propagation_recursive, 0ul);
  EXPECT_EQ(m.flags, 0ul);
  m = one("ro+runbindable");
  EXPECT_TRUE(m.read_only);
  EXPECT_EQ(m.propagation_recursive, static_cast<unsigned long>(MS_UNBINDABLE));
  m = one("shared+rslave+private+rprivate");
  EXPECT_EQ(m.propagation, static_cast<unsigned long>(MS_SHARED | MS_SLAVE | MS_PRIVATE));
  EXPECT_EQ(m.propagation_recursive, static_cast<unsigned long>(MS_SLAVE | MS_PRIVATE));
  m = one("bind");
  EXPECT_TRUE(m.bind && m.recursive);  // as Pyxis's rbind default with Enroot's flags
  m = one("nosuid+nodev+noexec+noatime+nodiratime+nofail");
  EXPECT_EQ(m.flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                                MS_NODIRATIME));
  EXPECT_TRUE(m.nofail);
  for (const char* flags :
       {"ro",           "rw",         "rbind",      "private",      "rprivate",
        "slave",        "rslave",     "shared",     "rshared",      "unbindable",
        "runbindable",  "nosuid",     "suid",       "nodev",        "dev",
        "noexec",       "exec",       "atime",      "noatime",      "diratime",
        "nodiratime",   "relatime",   "norelatime", "strictatime",  "nostrictatime",
        "sync",         "async",      "dirsync",    "mand",         "nomand",
        "iversion",     "noiversion", "lazytime",   "nolazytime",   "silent",
        "loud",         "defaults",   "auto",       "noauto",       "user",
        "users",        "nouser",     "nousers",    "owner",        "noowner",
        "group",        "nogroup",    "nofail",     "x-create=dir", "x-create=file",
        "x-create=auto"}) {
    EXPECT_EQ(error_of([&] { parse_container_mounts(std::string("/a:/b:") + flags, kNoEnv); }),
              "(no error)")
        << flags;
  }
  std::string e = error_of([] { parse_container_mounts("/a:/b:ro+bogus", kNoEnv); });
  EXPECT_NE(e.find("unknown mount flag 'bogus'"), std::string::npos) << e;
  EXPECT_NE(e.find("unbindable"), std::string::npos) << e;  // the accepted ones are listed
  EXPECT_NE(error_of([] { parse_container_mounts("/a:/b:remount", kNoEnv); }).find("remount"),
            std::string::npos);
  // A tmpfs keeps its own options, and its propagation apart from its flags.
  m = parse_container_mounts("tmpfs:/t:size=1m+private", kNoEnv).at(0);
  EXPECT_EQ(m.data, "size=1m");
  EXPECT_EQ(m.propagation, static_cast<unsigned long>(MS_PRIVATE));
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

TEST_F(SubmitTest, RelativeMountSourcesAreResolvedAgainstTheSubmitDirectory) {
  fs::create_directory(dir_ / "sub");
  ContainerRequest r;
  r.mounts = parse_container_mounts("./:/mnt,./sub:/s,./sub/..:/p", kNoEnv);
  EXPECT_EQ(error_of([&] { validate_on_submit(r, dir_); }), "(no error)");
  EXPECT_EQ(r.mounts[0].source, dir_.string());
  EXPECT_EQ(r.mounts[1].source, (dir_ / "sub").string());
  EXPECT_EQ(r.mounts[2].source, (dir_ / "sub/..").string());
  r.mounts = parse_container_mounts("./nope:/x", kNoEnv);
  std::string e = error_of([&] { validate_on_submit(r, dir_); });
  EXPECT_NE(e.find((dir_ / "nope").string() + " does not exist"), std::string::npos) << e;
}

TEST(Plugstack, KeysAndErrors) {
  auto c = parse_plugstack_args({"runtime_path=/run/deepops", "execute_entrypoint=1",
                                 "container_scope=job", "sbatch_support=0",
                                 "importer=/opt/site/importer", "use_squashfuse=1"});
  EXPECT_EQ(c.runtime_path, "/run/deepops");
  EXPECT_TRUE(c.execute_entrypoint);
  EXPECT_TRUE(c.job_scope);
  EXPECT_FALSE(c.sbatch_support);
  EXPECT_EQ(c.importer, "/opt/site/importer");
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("use_squashfuse"), std::string::npos);
  EXPECT_NE(error_of([] { parse_plugstack_args({"importer=importer.sh"}); }).find("absolute"),
            std::string::npos);
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
