// The settings' part of a container's spec, and of an export's request, as
// every front end builds them (the namespaces themselves are not run here).
#include "usecases/containers.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "error_matchers.hpp"
#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

class ContainerSpecTest : public test::FolderTest {
 protected:
  Settings settings;
  FoundImage image;
  std::map<std::string, std::string> vars;
  EnvLookup env = [this](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };

  void SetUp() override {
    fs::create_directories(root);
    // Both folders under the test's own: nothing of the host's or of the
    // working directory is read.
    settings.sysconf_dir = root / "etc";
    settings.config_path = root / "user";
    image.squashfs = root / "image.sqsh";
    image.config.env = {"PATH=/usr/bin"};
    image.config.cmd = {"/bin/sh"};
    image.config.working_dir = "/work";
    image.name = "docker.io/library/ubuntu:22.04";
  }

  static void write(const fs::path& p, const std::string& text, fs::perms perms = fs::perms{0644}) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    fs::permissions(p, perms);
  }
};

TEST_F(ContainerSpecTest, TheImageIsTheFoundOne) {
  ContainerSpec spec = container_spec(settings, image, env);
  EXPECT_EQ(spec.squashfs, image.squashfs);
  EXPECT_EQ(spec.image_name, image.name);
  EXPECT_EQ(spec.image.env, image.config.env);
  EXPECT_EQ(spec.image.cmd, image.config.cmd);
  EXPECT_EQ(spec.image.working_dir, "/work");
  // What the settings do not say is left to the front end.
  EXPECT_TRUE(spec.command.empty());
  EXPECT_FALSE(spec.entrypoint.has_value());
  EXPECT_FALSE(spec.persistent_dir.has_value());
  EXPECT_FALSE(spec.hold);
}

TEST_F(ContainerSpecTest, EachSettingGoesToItsField) {
  // Each setting both ways: none of them can be a constant of the spec.
  for (const bool on : {true, false}) {
    SCOPED_TRACE(on);
    settings.rootfs_writable = settings.remap_root = settings.mount_home = on;
    settings.restrict_dev = on;
    settings.seccomp_filter = !on;
    settings.overlay = on ? OverlayKind::fuse : OverlayKind::kernel;
    settings.runtime_path = root / (on ? "run" : "other-run");
    settings.host_root = on ? root / "host" : fs::path("/");
    settings.driver_library_dirs =
        on ? std::vector<std::string>{"/usr/lib/nvidia", "/opt/driver/lib64"}
           : std::vector<std::string>{};
    settings.slurm_tmpfs = on ? "/scratch/%n" : "/tmp";
    const ContainerSpec spec = container_spec(settings, image, env);
    EXPECT_EQ(spec.writable, on);
    EXPECT_EQ(spec.remap_root, on);
    EXPECT_EQ(spec.mount_home, on);
    EXPECT_EQ(spec.restrict_dev, on);
    EXPECT_EQ(spec.id_call_filter, !on);
    EXPECT_EQ(spec.overlay, settings.overlay);
    EXPECT_EQ(spec.runtime_dir, settings.runtime_path);
    EXPECT_EQ(spec.host.root, settings.host_root);
    EXPECT_EQ(spec.host.library_dirs, settings.driver_library_dirs);
    EXPECT_EQ(spec.host.slurm_tmpfs, settings.slurm_tmpfs);
  }
}

TEST_F(ContainerSpecTest, MountsComeFromTheSystemThenTheUserWithTheFilesVariables) {
  vars["DATA"] = "/host/data";
  write(settings.sysconf_dir / "mounts.d/10-a.fstab",
        "# site mounts\n${DATA} /data none rbind,ro\ntmpfs /scratch tmpfs size=1M 0 1\n");
  write(settings.sysconf_dir / "mounts.d/20-off.fstab.disabled", "/nope /nope none bind\n");
  write(settings.sysconf_dir / "mounts.d/30-notes.txt", "/nope /nope none bind\n");
  write(settings.config_path / "mounts.d/00-mine.fstab", "/home/me/x /x none bind\n");
  ContainerSpec spec = container_spec(settings, image, env);
  ASSERT_EQ(spec.mounts.size(), 3u);
  // passno 0 first (system, then user), then passno 1.
  EXPECT_EQ(spec.mounts[0].source, "/host/data");
  EXPECT_EQ(spec.mounts[0].target, "/data");
  EXPECT_TRUE(spec.mounts[0].bind);
  EXPECT_TRUE(spec.mounts[0].recursive);
  EXPECT_TRUE(spec.mounts[0].read_only);
  EXPECT_EQ(spec.mounts[0].origin, (settings.sysconf_dir / "mounts.d/10-a.fstab").string() + ":2");
  EXPECT_EQ(spec.mounts[1].source, "/home/me/x");
  EXPECT_EQ(spec.mounts[1].target, "/x");
  EXPECT_EQ(spec.mounts[1].origin,
            (settings.config_path / "mounts.d/00-mine.fstab").string() + ":1");
  EXPECT_EQ(spec.mounts[2].source, "tmpfs");
  EXPECT_EQ(spec.mounts[2].target, "/scratch");
  EXPECT_EQ(spec.mounts[2].type, "tmpfs");
  EXPECT_FALSE(spec.mounts[2].bind);
  EXPECT_EQ(spec.mounts[2].order, 1);
}

TEST_F(ContainerSpecTest, EnvironComesFromTheSystemThenTheUserWithTheFilesVariables) {
  vars["SITE"] = "hpc";
  write(settings.sysconf_dir / "environ.d/20-b.env", "B=2\nSHARED=system\n");
  write(settings.sysconf_dir / "environ.d/10-a.env", "A=${SITE}-a\n");
  write(settings.sysconf_dir / "environ.d/30-c.env.off", "C=3\n");
  write(settings.config_path / "environ.d/05-u.env", "export SHARED=user\n");
  ContainerSpec spec = container_spec(settings, image, env);
  std::vector<std::pair<std::string, std::string>> want = {
      {"A", "hpc-a"}, {"B", "2"}, {"SHARED", "system"}, {"SHARED", "user"}};
  EXPECT_EQ(spec.environ, want);
  // environ.d is not the image's ENV nor the front end's own variables.
  EXPECT_EQ(spec.image.env, image.config.env);
  EXPECT_TRUE(spec.env.empty());
}

TEST_F(ContainerSpecTest, TheFilesVariablesAreTheOnesPassed) {
  write(settings.sysconf_dir / "environ.d/10-a.env", "A=${SITE}\n");
  vars["SITE"] = "one";
  EXPECT_EQ(container_spec(settings, image, env).environ,
            (std::vector<std::pair<std::string, std::string>>{{"A", "one"}}));
  vars["SITE"] = "two";
  EXPECT_EQ(container_spec(settings, image, env).environ,
            (std::vector<std::pair<std::string, std::string>>{{"A", "two"}}));
}

TEST_F(ContainerSpecTest, HooksAreTheExecutablesOfHooksD) {
  write(settings.sysconf_dir / "hooks.d/20-b.sh", "#!/bin/sh\n", fs::perms{0755});
  write(settings.sysconf_dir / "hooks.d/10-a.sh", "#!/bin/sh\n", fs::perms{0755});
  write(settings.sysconf_dir / "hooks.d/15-off.sh", "#!/bin/sh\n", fs::perms{0644});
  write(settings.config_path / "hooks.d/00-mine", "#!/bin/sh\n", fs::perms{0700});
  ContainerSpec spec = container_spec(settings, image, env);
  EXPECT_EQ(spec.hooks, (std::vector<fs::path>{settings.sysconf_dir / "hooks.d/10-a.sh",
                                               settings.sysconf_dir / "hooks.d/20-b.sh",
                                               settings.config_path / "hooks.d/00-mine"}));
}

TEST_F(ContainerSpecTest, NoFoldersMeanNoMountsEnvironOrHooks) {
  ContainerSpec spec = container_spec(settings, image, env);
  EXPECT_TRUE(spec.mounts.empty());
  EXPECT_TRUE(spec.environ.empty());
  EXPECT_TRUE(spec.hooks.empty());
}

// The bad files below: any code, as long as the message says where.
const std::optional<Errc> kErrorCode = std::nullopt;

TEST_F(ContainerSpecTest, ABadMountsFileIsAnErrorNamingFileAndLine) {
  write(settings.sysconf_dir / "mounts.d/10-a.fstab", "/a /a\n/b /b/../../etc\n");
  EXPECT_ERROR_MENTIONS(container_spec(settings, image, env),
                        (settings.sysconf_dir / "mounts.d/10-a.fstab").string() + ":2", "'..'");
}

TEST_F(ContainerSpecTest, ABadEnvironFileIsAnErrorNamingFileAndLine) {
  write(settings.config_path / "environ.d/10-a.env", "A=1\nnot a line\n");
  EXPECT_ERROR_MENTIONS(container_spec(settings, image, env),
                        (settings.config_path / "environ.d/10-a.env").string() + ":2");
}

TEST(ExportRequest, CarriesTheImageTheLayerAndTheSettingsRuntimeAndOverlay) {
  Settings settings;
  settings.runtime_path = "/run/user/1000/deepops";
  ImageConfig config;
  config.env = {"A=1"};
  config.cmd = {"/bin/bash"};
  for (OverlayKind kind : {OverlayKind::automatic, OverlayKind::kernel, OverlayKind::fuse}) {
    SCOPED_TRACE(to_string(kind));
    settings.overlay = kind;
    ExportRequest r =
        export_request(settings, "/cache/images/x.sqsh", config, "pytorch", "/data/containers/c1");
    EXPECT_EQ(r.squashfs, "/cache/images/x.sqsh");
    EXPECT_EQ(r.config.env, config.env);
    EXPECT_EQ(r.config.cmd, config.cmd);
    EXPECT_EQ(r.name, "pytorch");
    EXPECT_EQ(r.layer_dir, "/data/containers/c1");
    EXPECT_EQ(r.runtime_dir, "/run/user/1000/deepops");
    EXPECT_EQ(r.overlay, kind);
  }
  settings.runtime_path = "/tmp/deepops-1000";
  EXPECT_EQ(export_request(settings, "/i.sqsh", config, "n", "/l").runtime_dir,
            "/tmp/deepops-1000");
}

}  // namespace
}  // namespace deepops
