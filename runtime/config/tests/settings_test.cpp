// Settings: defaults, deepops.conf, conf.d, then the environment, and the
// mounts.d / environ.d / hooks.d folders they point at.
#include "config/settings.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

const std::optional<Errc> kErrorCode = std::nullopt;
using testing::error_of;

class SettingsTest : public ::testing::Test {
 protected:
  // One folder per test: ctest runs each test as its own process, in parallel.
  fs::path root =
      fs::temp_directory_path() / ("settings-test-" + std::to_string(getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::path sysconf = root / "etc";
  fs::path home = root / "home";
  std::map<std::string, std::string> vars;

  void SetUp() override {
    fs::remove_all(root);
    fs::create_directories(sysconf);
    fs::create_directories(home);
    vars = {{"HOME", home.string()}, {"DEEPOPS_SYSCONF_DIR", sysconf.string()}};
  }
  void TearDown() override { fs::remove_all(root); }

  EnvLookup env() const {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
  Settings load() const { return Settings::load(SettingsSources::from_environment(env())); }

  static void write(const fs::path& p, const std::string& text, fs::perms mode = fs::perms{0644}) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    fs::permissions(p, mode);
  }
};

// ---- defaults

TEST_F(SettingsTest, DefaultsFollowHomeAndXdg) {
  Settings s = load();
  EXPECT_EQ(s.sysconf_dir, sysconf);
  EXPECT_EQ(s.cache_path, home / ".cache/deepops");
  EXPECT_EQ(s.data_path, home / ".local/share/deepops");
  EXPECT_EQ(s.config_path, home / ".config/deepops");
  EXPECT_EQ(s.runtime_path, fs::path("/tmp/deepops-" + std::to_string(getuid())));
  EXPECT_FALSE(s.mount_home);
  EXPECT_FALSE(s.remap_root);
  EXPECT_FALSE(s.rootfs_writable);
  EXPECT_FALSE(s.restrict_dev);
  for (const char* key : {"RUNTIME_PATH", "CACHE_PATH", "DATA_PATH", "CONFIG_PATH", "MOUNT_HOME",
                          "REMAP_ROOT", "ROOTFS_WRITABLE", "RESTRICT_DEV"}) {
    EXPECT_EQ(s.origin[key], "default") << key;
  }
  for (const auto& [key, where] : s.origin) EXPECT_EQ(where, "default") << key;
}

TEST_F(SettingsTest, XdgFoldersWhenSetAndNotEmpty) {
  fs::create_directories(root / "run");
  vars["XDG_RUNTIME_DIR"] = (root / "run").string();
  vars["XDG_CACHE_HOME"] = "/c";
  vars["XDG_DATA_HOME"] = "/d";
  vars["XDG_CONFIG_HOME"] = "";  // empty: as if unset
  Settings s = load();
  EXPECT_EQ(s.runtime_path, root / "run/deepops");
  EXPECT_EQ(s.cache_path, fs::path("/c/deepops"));
  EXPECT_EQ(s.data_path, fs::path("/d/deepops"));
  EXPECT_EQ(s.config_path, home / ".config/deepops");
}

TEST_F(SettingsTest, AMissingRuntimeDirFallsBackToTmp) {
  vars["XDG_RUNTIME_DIR"] = (root / "does-not-exist").string();
  EXPECT_EQ(load().runtime_path, fs::path("/tmp/deepops-" + std::to_string(getuid())));
}

TEST_F(SettingsTest, NoHomeMeansTheRootFolder) {
  vars.erase("HOME");
  EXPECT_EQ(load().cache_path, fs::path("/.cache/deepops"));
}

TEST_F(SettingsTest, NoSysconfDirMeansEtcDeepops) {
  vars.erase("DEEPOPS_SYSCONF_DIR");
  if (fs::exists("/etc/deepops")) GTEST_SKIP() << "this host has an /etc/deepops";
  EXPECT_EQ(load().sysconf_dir, fs::path("/etc/deepops"));
}

// ---- files

TEST_F(SettingsTest, ReadsDeepopsConfInItsSyntaxes) {
  vars["SCRATCH"] = "/scratch/alice";
  write(sysconf / "deepops.conf",
        "# deepops.conf\n"
        "\n"
        "CACHE_PATH ${SCRATCH}/cache\n"
        "DATA_PATH=/data/x   \n"
        "  DEEPOPS_RUNTIME_PATH \t /run/x\r\n"
        "ENROOT_MOUNT_HOME = yes\n"
        "\t# indented comment\n"
        "REMAP_ROOT\ttrue\n"
        "ROOTFS_WRITABLE=ON\n"
        "RESTRICT_DEV");  // no value: no; no final newline
  Settings s = load();
  const std::string conf = (sysconf / "deepops.conf").string();
  EXPECT_EQ(s.cache_path, fs::path("/scratch/alice/cache"));
  EXPECT_EQ(s.origin["CACHE_PATH"], conf + ":3");
  EXPECT_EQ(s.data_path, fs::path("/data/x"));
  EXPECT_EQ(s.origin["DATA_PATH"], conf + ":4");
  EXPECT_EQ(s.runtime_path, fs::path("/run/x"));
  EXPECT_EQ(s.origin["RUNTIME_PATH"], conf + ":5");
  EXPECT_TRUE(s.mount_home);
  EXPECT_EQ(s.origin["MOUNT_HOME"], conf + ":6");
  EXPECT_TRUE(s.remap_root);
  EXPECT_EQ(s.origin["REMAP_ROOT"], conf + ":8");
  EXPECT_TRUE(s.rootfs_writable);
  EXPECT_FALSE(s.restrict_dev);
  EXPECT_EQ(s.origin["RESTRICT_DEV"], conf + ":10");
  EXPECT_EQ(s.origin["CONFIG_PATH"], "default");
}

TEST_F(SettingsTest, ConfDFilesOverrideDeepopsConfInNameOrder) {
  write(sysconf / "deepops.conf", "CACHE_PATH /from/conf\nDATA_PATH /data/conf\n");
  write(sysconf / "conf.d/20-site.conf", "CACHE_PATH /from/20\n");
  write(sysconf / "conf.d/10-base.conf", "CACHE_PATH /from/10\nMOUNT_HOME yes\n");
  write(sysconf / "conf.d/30-ignored.conf.bak", "CACHE_PATH /from/bak\n");
  write(sysconf / "conf.d/README", "not a conf file\n");
  fs::create_directories(sysconf / "conf.d/40-dir.conf");  // a folder, not a file
  Settings s = load();
  EXPECT_EQ(s.cache_path, fs::path("/from/20"));
  EXPECT_EQ(s.origin["CACHE_PATH"], (sysconf / "conf.d/20-site.conf").string() + ":1");
  EXPECT_EQ(s.data_path, fs::path("/data/conf"));
  EXPECT_TRUE(s.mount_home);
  EXPECT_EQ(s.origin["MOUNT_HOME"], (sysconf / "conf.d/10-base.conf").string() + ":2");
}

TEST_F(SettingsTest, SystemCachesAreAColonListAndNoEnrootAlias) {
  write(sysconf / "conf.d/50-ansible.conf", "SYSTEM_CACHE /var/lib/deepops/a::/srv/b\n");
  vars["ENROOT_SYSTEM_CACHE"] = "/enroot/means/nothing/here";
  Settings s = load();
  EXPECT_EQ(s.system_caches, (std::vector<fs::path>{"/var/lib/deepops/a", "/srv/b"}));
  vars["DEEPOPS_SYSTEM_CACHE"] = "/from/env";
  EXPECT_EQ(load().system_caches, std::vector<fs::path>{"/from/env"});
}

TEST_F(SettingsTest, ImportLimitsHaveDefaultsAndTakeSizes) {
  Settings d = load();
  EXPECT_EQ(d.import_limits.max_bytes, uint64_t{256} << 30);
  EXPECT_EQ(d.import_limits.max_entries, 10'000'000u);
  write(sysconf / "deepops.conf", "IMPORT_MAX_SIZE 1TiB\nIMPORT_MAX_ENTRIES 20000000\n");
  vars["ENROOT_IMPORT_MAX_SIZE"] = "1";  // not an Enroot key: ignored
  Settings s = load();
  EXPECT_EQ(s.import_limits.max_bytes, uint64_t{1} << 40);
  EXPECT_EQ(s.import_limits.max_entries, 20'000'000u);
  vars["DEEPOPS_IMPORT_MAX_SIZE"] = "64M";
  EXPECT_EQ(load().import_limits.max_bytes, uint64_t{64} << 20);
  vars["DEEPOPS_IMPORT_MAX_SIZE"] = "lots";
  EXPECT_ERROR_MENTIONS(load(), "IMPORT_MAX_SIZE", "'lots'", "not a size");
  vars["DEEPOPS_IMPORT_MAX_SIZE"] = "1.5T";  // the grammar of gc --max-size
  EXPECT_EQ(load().import_limits.max_bytes, uint64_t{3} << 39);
  vars["DEEPOPS_IMPORT_MAX_SIZE"] = "0";
  EXPECT_ERROR_MENTIONS(load(), "environment (DEEPOPS_IMPORT_MAX_SIZE)", "more than 0");
}

TEST_F(SettingsTest, ImageMountLingerIsSecondsAndNoEnrootAlias) {
  EXPECT_EQ(load().image_mount_linger, std::chrono::seconds(10));
  write(sysconf / "deepops.conf", "IMAGE_MOUNT_LINGER 2m\n");
  EXPECT_EQ(load().image_mount_linger, std::chrono::seconds(120));
  vars["ENROOT_IMAGE_MOUNT_LINGER"] = "5";  // not an Enroot key: ignored
  EXPECT_EQ(load().image_mount_linger, std::chrono::seconds(120));
  vars["DEEPOPS_IMAGE_MOUNT_LINGER"] = "0";
  EXPECT_EQ(load().image_mount_linger, std::chrono::seconds(0));
  vars["DEEPOPS_IMAGE_MOUNT_LINGER"] = "forever";
  EXPECT_ERROR_MENTIONS(load(), "environment (DEEPOPS_IMAGE_MOUNT_LINGER)", "'forever'");
}

TEST_F(SettingsTest, ConfDWithoutDeepopsConf) {
  write(sysconf / "conf.d/a.conf", "REMAP_ROOT 1\n");
  EXPECT_TRUE(load().remap_root);
}

// ---- the environment

TEST_F(SettingsTest, PrecedenceIsFileThenConfDThenEnrootThenDeepopsEnvironment) {
  struct Layer {
    bool conf, confd, enroot, deepops;
    std::string want_value, want_origin;
  };
  const std::string conf = (sysconf / "deepops.conf").string() + ":1";
  const std::string confd = (sysconf / "conf.d/a.conf").string() + ":1";
  const std::vector<Layer> layers = {
      {false, false, false, false, "/run/default", "default"},
      {true, false, false, false, "/run/conf", conf},
      {true, true, false, false, "/run/confd", confd},
      {true, true, true, false, "/run/enroot", "environment (ENROOT_RUNTIME_PATH)"},
      {true, true, true, true, "/run/deepops", "environment (DEEPOPS_RUNTIME_PATH)"},
      {false, false, true, true, "/run/deepops", "environment (DEEPOPS_RUNTIME_PATH)"},
      {true, false, true, false, "/run/enroot", "environment (ENROOT_RUNTIME_PATH)"},
      {true, true, false, true, "/run/deepops", "environment (DEEPOPS_RUNTIME_PATH)"},
  };
  for (const auto& l : layers) {
    SetUp();
    if (l.conf) write(sysconf / "deepops.conf", "RUNTIME_PATH /run/conf\n");
    if (l.confd) write(sysconf / "conf.d/a.conf", "RUNTIME_PATH /run/confd\n");
    if (l.enroot) vars["ENROOT_RUNTIME_PATH"] = "/run/enroot";
    if (l.deepops) vars["DEEPOPS_RUNTIME_PATH"] = "/run/deepops";
    Settings s = load();
    if (l.want_value != "/run/default") {
      EXPECT_EQ(s.runtime_path, fs::path(l.want_value));
    }
    EXPECT_EQ(s.origin["RUNTIME_PATH"], l.want_origin)
        << l.conf << l.confd << l.enroot << l.deepops;
  }
}

TEST_F(SettingsTest, BooleansFromTheEnvironment) {
  write(sysconf / "deepops.conf", "MOUNT_HOME yes\nREMAP_ROOT no\n");
  vars["ENROOT_MOUNT_HOME"] = "no";
  vars["ENROOT_REMAP_ROOT"] = "yes";
  vars["DEEPOPS_ROOTFS_WRITABLE"] = "y";
  vars["ENROOT_RESTRICT_DEV"] = "1";
  vars["DEEPOPS_RESTRICT_DEV"] = "0";
  Settings s = load();
  EXPECT_FALSE(s.mount_home);
  EXPECT_EQ(s.origin["MOUNT_HOME"], "environment (ENROOT_MOUNT_HOME)");
  EXPECT_TRUE(s.remap_root);
  EXPECT_TRUE(s.rootfs_writable);
  EXPECT_EQ(s.origin["ROOTFS_WRITABLE"], "environment (DEEPOPS_ROOTFS_WRITABLE)");
  EXPECT_FALSE(s.restrict_dev);
  EXPECT_EQ(s.origin["RESTRICT_DEV"], "environment (DEEPOPS_RESTRICT_DEV)");
}

TEST_F(SettingsTest, EnrootCacheAndDataPathsAreNotAliases) {
  // Enroot's folders hold other formats: its variables must not point ours there.
  vars["ENROOT_CACHE_PATH"] = "/enroot/cache";
  vars["ENROOT_DATA_PATH"] = "/enroot/data";
  vars["ENROOT_CONFIG_PATH"] = "/enroot/config";  // means the same: read
  Settings s = load();
  EXPECT_EQ(s.cache_path, home / ".cache/deepops");
  EXPECT_EQ(s.origin["CACHE_PATH"], "default");
  EXPECT_EQ(s.data_path, home / ".local/share/deepops");
  EXPECT_EQ(s.origin["DATA_PATH"], "default");
  EXPECT_EQ(s.config_path, fs::path("/enroot/config"));

  vars["DEEPOPS_CACHE_PATH"] = "/ours/cache";
  vars["DEEPOPS_DATA_PATH"] = "/ours/data";
  s = load();
  EXPECT_EQ(s.cache_path, fs::path("/ours/cache"));
  EXPECT_EQ(s.origin["CACHE_PATH"], "environment (DEEPOPS_CACHE_PATH)");
  EXPECT_EQ(s.data_path, fs::path("/ours/data"));
}

TEST_F(SettingsTest, OtherEnvironmentVariablesAreIgnored) {
  vars["DEEPOPS_NO_SUCH_KEY"] = "x";
  vars["ENROOT_SQUASH_OPTIONS"] = "-comp zstd";
  vars["MOUNT_HOME"] = "maybe";  // no prefix: not ours
  EXPECT_NO_THROW(load());
}

// ---- errors

TEST_F(SettingsTest, UnknownKeyNamesFileAndLine) {
  write(sysconf / "deepops.conf", "# c\nCACHE_PATH /x\nCACHE_PAHT /y\n");
  EXPECT_ERROR_MENTIONS(load(), (sysconf / "deepops.conf").string() + ":3", "'CACHE_PAHT'");
  SetUp();
  write(sysconf / "conf.d/50-x.conf", "\n\nSQUASH_OPTIONS=-comp zstd\n");
  EXPECT_ERROR_MENTIONS(load(), (sysconf / "conf.d/50-x.conf").string() + ":3",
                        "unknown setting 'SQUASH_OPTIONS'");
}

TEST_F(SettingsTest, BadBooleanNamesWhereAndWhat) {
  write(sysconf / "deepops.conf", "MOUNT_HOME maybe\n");
  EXPECT_ERROR_MENTIONS(load(), (sysconf / "deepops.conf").string() + ":1", "MOUNT_HOME",
                        "'maybe'");
  SetUp();
  vars["DEEPOPS_REMAP_ROOT"] = "2";
  EXPECT_ERROR_MENTIONS(load(), "environment (DEEPOPS_REMAP_ROOT)", "'2'");
}

TEST_F(SettingsTest, UnterminatedReferenceInAFileIsAnError) {
  write(sysconf / "deepops.conf", "CACHE_PATH ${SCRATCH/cache\n");
  EXPECT_ERROR_MENTIONS(load(), "unterminated");
}

// DISABLED: substitute_env's Error has no "file:line" and load_file does not
// add it, unlike every other error in the file.
TEST_F(SettingsTest, UnterminatedReferenceNamesFileAndLine) {
  write(sysconf / "deepops.conf", "\nCACHE_PATH ${SCRATCH/cache\n");
  EXPECT_ERROR_MENTIONS(load(), (sysconf / "deepops.conf").string() + ":2");
}

// Trailing blanks are dropped from values; a tab is a blank too.
// DISABLED: load_file strips trailing ' ' and '\r' only, so "MOUNT_HOME yes\t"
// fails with "'yes\t' is not yes or no".
TEST_F(SettingsTest, TrailingTabIsIgnored) {
  write(sysconf / "deepops.conf", "MOUNT_HOME yes\t\n");
  EXPECT_TRUE(load().mount_home);
}

// ---- mounts.d, environ.d, hooks.d

TEST_F(SettingsTest, LoadMountsSystemThenUserSortedByNameThenPassno) {
  vars["XDG_CONFIG_HOME"] = (root / "cfg").string();
  const fs::path user = root / "cfg/deepops";
  write(sysconf / "mounts.d/20-b.fstab", "/b1 /b1\n/b2 /b2 none rbind 0 1\n");
  write(sysconf / "mounts.d/10-a.fstab", "# a\n/a1 /a1\n/a2 /a2 none rbind 0 2\n");
  write(sysconf / "mounts.d/30-c.fstab.disabled", "proc /proc proc\n");
  write(sysconf / "mounts.d/notes.txt", "proc /proc proc\n");
  write(user / "mounts.d/00-user.fstab", "${HOME} /u0\n/u1 /u1 none rbind 0 1\n");
  Settings s = load();
  ASSERT_EQ(s.config_path, user);
  auto ms = s.load_mounts(env());
  std::vector<std::string> targets;
  for (const auto& m : ms) targets.push_back(m.target);
  // passno 0: a1 b1 u0 (file order); passno 1: b2 u1; passno 2: a2.
  EXPECT_EQ(targets, (std::vector<std::string>{"/a1", "/b1", "/u0", "/b2", "/u1", "/a2"}));
  ASSERT_EQ(ms.size(), 6u);
  EXPECT_EQ(ms[0].origin, (sysconf / "mounts.d/10-a.fstab").string() + ":2");
  EXPECT_EQ(ms[2].source, home.string());
  EXPECT_EQ(ms[2].origin, (user / "mounts.d/00-user.fstab").string() + ":1");
  EXPECT_EQ(ms[5].origin, (sysconf / "mounts.d/10-a.fstab").string() + ":3");
}

TEST_F(SettingsTest, LoadMountsWithoutFoldersIsEmpty) {
  EXPECT_TRUE(load().load_mounts(env()).empty());
}

TEST_F(SettingsTest, LoadMountsErrorsNameFileAndLine) {
  write(sysconf / "mounts.d/10-a.fstab", "/a /a\n/b /b/../../etc\n");
  Settings s = load();
  EXPECT_ERROR_MENTIONS(s.load_mounts(env()), (sysconf / "mounts.d/10-a.fstab").string() + ":2",
                        "'..'");
}

TEST_F(SettingsTest, LoadEnvironSystemThenUserInNameOrder) {
  write(sysconf / "deepops.conf", "CONFIG_PATH " + (root / "user").string() + "\n");
  write(sysconf / "environ.d/20-b.env", "B=2\nSHARED=system\n");
  write(sysconf / "environ.d/10-a.env", "A=${HOME}\n");
  write(sysconf / "environ.d/30-c.env.off", "C=3\n");
  write(root / "user/environ.d/05-u.env", "export SHARED=user\n");
  Settings s = load();
  std::vector<std::pair<std::string, std::string>> want = {
      {"A", home.string()}, {"B", "2"}, {"SHARED", "system"}, {"SHARED", "user"}};
  EXPECT_EQ(s.load_environ(env()), want);
}

TEST_F(SettingsTest, LoadEnvironErrorsNameFileAndLine) {
  write(sysconf / "environ.d/10-a.env", "A=1\nnot a line\n");
  EXPECT_ERROR_MENTIONS(load().load_environ(env()),
                        (sysconf / "environ.d/10-a.env").string() + ":2", "NAME=VALUE");
}

TEST_F(SettingsTest, HooksAreExecutableRegularFilesSystemThenUserSorted) {
  write(sysconf / "deepops.conf", "CONFIG_PATH " + (root / "user").string() + "\n");
  const fs::path sys = sysconf / "hooks.d", usr = root / "user/hooks.d";
  write(sys / "20-b.sh", "#!/bin/sh\n", fs::perms{0755});
  write(sys / "10-a", "#!/bin/sh\n", fs::perms{0700});
  write(sys / "15-not-executable.sh", "#!/bin/sh\n", fs::perms{0644});
  fs::create_directories(sys / "50-folder");
  fs::permissions(sys / "50-folder", fs::perms{0755});
  fs::create_symlink(sys / "20-b.sh", sys / "30-link");       // to an executable file: runs
  fs::create_symlink(sys / "50-folder", sys / "60-dirlink");  // to a folder: no
  fs::create_symlink(root / "missing", sys / "70-dangling");
  write(usr / "00-user", "#!/bin/sh\n", fs::perms{0755});
  auto hooks = load().hooks();
  EXPECT_EQ(hooks, (std::vector<fs::path>{sys / "10-a", sys / "20-b.sh", sys / "30-link",
                                          usr / "00-user"}));
}

TEST_F(SettingsTest, NoHookFoldersMeanNoHooks) { EXPECT_TRUE(load().hooks().empty()); }

// ---- the layers, as each front end allows them

TEST_F(SettingsTest, TheUsersFileComesAfterTheSitesAndBeforeTheEnvironment) {
  write(sysconf / "deepops.conf", "CACHE_PATH /site/cache\nREMAP_ROOT yes\nMOUNT_HOME yes\n");
  write(home / ".config/deepops/deepops.conf", "CACHE_PATH /mine\nREMAP_ROOT no\n");
  vars["DEEPOPS_REMAP_ROOT"] = "yes";
  Settings s = load();
  EXPECT_EQ(s.cache_path, "/mine");
  EXPECT_EQ(s.origin.at("CACHE_PATH"), (home / ".config/deepops/deepops.conf").string() + ":1");
  EXPECT_TRUE(s.remap_root);  // the variable wins over both files
  EXPECT_TRUE(s.mount_home);  // the site's, untouched by the user's file
}

TEST_F(SettingsTest, AFrontEndMayAllowNeitherTheUsersFileNorTheEnvironment) {
  write(sysconf / "deepops.conf", "CACHE_PATH /site/cache\n");
  write(home / ".config/deepops/deepops.conf", "CACHE_PATH /mine\n");
  vars["DEEPOPS_MIRRORS_CONFIG"] = "/job/mirrors.json";
  vars["DEEPOPS_CACHE_PATH"] = "/job/cache";
  SettingsSources keeper = SettingsSources::from_environment(env());
  keeper.environment = false;
  keeper.user_file = false;
  Settings s = Settings::load(keeper);
  EXPECT_EQ(s.cache_path, "/site/cache");
  EXPECT_EQ(s.mirrors_config, sysconf / "mirrors.json");
  Settings cli = load();
  EXPECT_EQ(cli.cache_path, "/job/cache");
  EXPECT_EQ(cli.mirrors_config, "/job/mirrors.json");
}

TEST_F(SettingsTest, AllowHttpFromTheEnvironmentIsABooleanOrHosts) {
  vars["DEEPOPS_ALLOW_HTTP"] = "1";  // once read as a registry named "1"
  EXPECT_EQ(load().allow_http, std::vector<std::string>{"*"});
  vars["DEEPOPS_ALLOW_HTTP"] = "127.0.0.1:5000, mirror:80";
  EXPECT_EQ(load().allow_http, (std::vector<std::string>{"127.0.0.1:5000", "mirror:80"}));
  vars["DEEPOPS_ALLOW_HTTP"] = "http://mirror/";
  EXPECT_ERROR_MENTIONS(load(), "environment (DEEPOPS_ALLOW_HTTP)", "not a registry host");
}

TEST_F(SettingsTest, AFlagIsTheLastLayerAndNamesItself) {
  Settings s = load();
  s.set("ALLOW_HTTP", "yes", "--allow-http");
  EXPECT_EQ(s.origin.at("ALLOW_HTTP"), "--allow-http");
  EXPECT_ERROR_MENTIONS(s.set("IMPORT_MAX_SIZE", "x", "--max-size"), "--max-size", "'x'");
}

}  // namespace
}  // namespace deepops

namespace deepops {
namespace {

class PluginImportSettings : public ::testing::Test {
 protected:
  static Settings with(const std::string& key, const std::string& value) {
    Settings s;
    s.set(key, value, "test");
    return s;
  }
};

TEST_F(PluginImportSettings, AllowHttpTakesYesNoOrAList) {
  EXPECT_EQ(with("ALLOW_HTTP", "yes").allow_http, std::vector<std::string>{"*"});
  EXPECT_TRUE(with("ALLOW_HTTP", "no").allow_http.empty());
  EXPECT_TRUE(with("ALLOW_HTTP", "").allow_http.empty());
  EXPECT_EQ(with("ALLOW_HTTP", "mirror:5000,10.0.0.1:80").allow_http,
            (std::vector<std::string>{"mirror:5000", "10.0.0.1:80"}));
  EXPECT_EQ(with("CA_FILE", "/etc/ssl/site.pem").ca_file, "/etc/ssl/site.pem");
}

}  // namespace
}  // namespace deepops
