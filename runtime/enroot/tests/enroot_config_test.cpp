// Enroot's configuration mapped onto the runtime's settings.
#include "enroot/enroot_config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops::enroot {
namespace {
namespace fs = std::filesystem;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(EnrootConf, ValuesAreShellWords) {
  auto env = env_of({{"HOME", "/home/u"}, {"USER", "u"}});
  auto lines = parse_enroot_conf(
      "# comment\n"
      "ENROOT_RUNTIME_PATH ${HOME}/run\n"
      "ENROOT_DATA_PATH=\"$HOME/data dir\"\n"
      "ENROOT_MOUNT_HOME   'yes'\n"
      "ENROOT_SQUASH_OPTIONS -comp zstd -Xcompression-level 3\n"
      "NVIDIA_DRIVER_CAPABILITIES compute,utility\n"
      "OTHER_KEY ignored\n"
      "ENROOT_X ${UNSET:-fallback}\n",
      env, "enroot.conf");
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0].first, "ENROOT_RUNTIME_PATH");
  EXPECT_EQ(lines[0].second.value, "/home/u/run");
  EXPECT_EQ(lines[0].second.origin, "enroot.conf:2");
  EXPECT_EQ(lines[1].second.value, "/home/u/data dir");
  EXPECT_EQ(lines[2].second.value, "yes");
  EXPECT_EQ(lines[3].second.value, "-comp zstd -Xcompression-level 3");
  EXPECT_EQ(lines[4].first, "NVIDIA_DRIVER_CAPABILITIES");
  EXPECT_EQ(lines[5].second.value, "fallback");
}

TEST(EnrootConf, CommandSubstitutionIsRefusedNotRun) {
  auto env = env_of({});
  EXPECT_THROW(parse_enroot_conf("ENROOT_DATA_PATH $(id -u)\n", env, "f"), Error);
  EXPECT_THROW(parse_enroot_conf("ENROOT_DATA_PATH `id -u`\n", env, "f"), Error);
  EXPECT_THROW(parse_enroot_conf("ENROOT_DATA_PATH \"open\n", env, "f"), Error);
}

TEST(EnrootConf, EnrootBooleans) {
  for (const char* f : {"", "n", "no", "N", "NO", "f", "false", "FALSE", "False", "0"}) {
    EXPECT_FALSE(enroot_true(f)) << f;
  }
  for (const char* t : {"y", "yes", "true", "1", "on"}) EXPECT_TRUE(enroot_true(t)) << t;
}

class EnrootConfigTest : public ::testing::Test {
 protected:
  deepops::test::TestFolder dir{"enroot-config"};
  std::map<std::string, std::string> vars;
  void SetUp() override {
    fs::create_directories(dir.path() / "etc/enroot/enroot.conf.d");
    fs::create_directories(dir.path() / "etc/deepops");
    vars = {{"HOME", (dir.path() / "home").string()},
            {"ENROOT_SYSCONF_PATH", (dir.path() / "etc/enroot").string()},
            {"DEEPOPS_SYSCONF_DIR", (dir.path() / "etc/deepops").string()}};
  }
  void write(const std::string& rel, const std::string& text) {
    std::ofstream(dir.path() / rel) << text;
  }
};

TEST_F(EnrootConfigTest, FilesThenDropinsThenTheEnvironment) {
  write("etc/enroot/enroot.conf", "ENROOT_REMAP_ROOT yes\nENROOT_MOUNT_HOME yes\n");
  write("etc/enroot/enroot.conf.d/50-site.conf", "ENROOT_MOUNT_HOME no\n");
  vars["ENROOT_ROOTFS_WRITABLE"] = "y";
  const EnrootConfig c = EnrootConfig::load(env_of(vars));
  const Settings s = c.settings();
  EXPECT_TRUE(s.remap_root);
  EXPECT_FALSE(s.mount_home);  // the drop-in, read after enroot.conf
  EXPECT_TRUE(s.rootfs_writable);
  EXPECT_NE(s.origin.at("REMAP_ROOT").find("enroot.conf:1"), std::string::npos);
}

TEST_F(EnrootConfigTest, TheEnvironmentWinsOverTheFiles) {
  write("etc/enroot/enroot.conf", "ENROOT_REMAP_ROOT yes\n");
  vars["ENROOT_REMAP_ROOT"] = "no";
  EXPECT_FALSE(EnrootConfig::load(env_of(vars)).settings().remap_root);
}

TEST_F(EnrootConfigTest, DirectivesWinOverEverything) {
  vars["ENROOT_REMAP_ROOT"] = "no";
  EnrootConfig c = EnrootConfig::load(env_of(vars));
  c.apply_directives("#!/bin/bash\n#ENROOT_REMAP_ROOT=y\n# ENROOT_ROOTFS=box\nenviron() { :; }\n",
                     "conf.sh");
  EXPECT_TRUE(c.settings().remap_root);
  EXPECT_EQ(c.value("ENROOT_ROOTFS"), "box");
}

TEST_F(EnrootConfigTest, ConfigPathAndFoldersAreEnroots) {
  const Settings s = EnrootConfig::load(env_of(vars)).settings();
  EXPECT_EQ(s.config_path, dir.path() / "home/.config/enroot");
  ASSERT_EQ(s.extra_conf_dirs.size(), 1u);
  EXPECT_EQ(s.extra_conf_dirs[0], dir.path() / "etc/enroot");
  EXPECT_EQ(s.sysconf_dir, dir.path() / "etc/deepops");
  EXPECT_TRUE(s.skipped_conf_files.count("98-nvidia.sh"));
}

TEST_F(EnrootConfigTest, EnrootsStandardHooksAreSkippedOthersRun) {
  fs::create_directories(dir.path() / "etc/enroot/hooks.d");
  for (const char* hook : {"98-nvidia.sh", "60-site.sh"}) {
    write(std::string("etc/enroot/hooks.d/") + hook, "#!/bin/sh\n");
    fs::permissions(dir.path() / "etc/enroot/hooks.d" / hook, fs::perms::owner_all);
  }
  const auto hooks = EnrootConfig::load(env_of(vars)).settings().hooks();
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].filename(), "60-site.sh");
}

TEST_F(EnrootConfigTest, WhatMeansNothingHereIsNotedWithWhy) {
  write("etc/enroot/enroot.conf",
        "ENROOT_DATA_PATH /x\nENROOT_SQUASH_OPTIONS -comp lzo -noD\nENROOT_NO_SUCH y\n");
  vars["ENROOT_CACHE_PATH"] = "/y";
  const auto notes = EnrootConfig::load(env_of(vars)).notes();
  std::map<std::string, EnrootNote> by_key;
  for (const auto& n : notes) by_key[n.key] = n;
  ASSERT_TRUE(by_key.count("ENROOT_DATA_PATH"));
  EXPECT_NE(by_key["ENROOT_DATA_PATH"].why.find("DATA_PATH"), std::string::npos);
  EXPECT_FALSE(by_key["ENROOT_DATA_PATH"].from_environment);
  ASSERT_TRUE(by_key.count("ENROOT_CACHE_PATH"));
  EXPECT_TRUE(by_key["ENROOT_CACHE_PATH"].from_environment);
  ASSERT_TRUE(by_key.count("ENROOT_SQUASH_OPTIONS"));
  EXPECT_EQ(by_key["ENROOT_SQUASH_OPTIONS"].value, "-comp lzo -noD");
  ASSERT_TRUE(by_key.count("ENROOT_NO_SUCH"));
  EXPECT_FALSE(by_key.count("ENROOT_REMAP_ROOT"));
}

TEST_F(EnrootConfigTest, SquashOptionsAndConnectionsMapWhereTheyCan) {
  write("etc/enroot/enroot.conf",
        "ENROOT_SQUASH_OPTIONS -noI -comp xz -Xcompression-level 6\nENROOT_MAX_CONNECTIONS 64\n");
  const EnrootConfig c = EnrootConfig::load(env_of(vars));
  EXPECT_EQ(c.squash_options().compression, "xz");
  EXPECT_EQ(c.squash_options().level, 6);
  EXPECT_EQ(c.max_connections(), 32u);
}

TEST_F(EnrootConfigTest, ExportsOnlyWhatTheEnvironmentLacks) {
  write("etc/enroot/enroot.conf", "NVIDIA_DRIVER_CAPABILITIES all\nhttps_proxy http://p:3128\n");
  vars["https_proxy"] = "http://mine:1";
  const auto exports = EnrootConfig::load(env_of(vars)).exports();
  ASSERT_EQ(exports.size(), 1u);
  EXPECT_EQ(exports[0].first, "NVIDIA_DRIVER_CAPABILITIES");
}

}  // namespace
}  // namespace deepops::enroot
