// `deepops-ctr check`: the kernel's prerequisites, read from a fixture /proc
// so that each verdict is known whatever the machine running the test.
#include "container/system_check.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "test_folder.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;
using Status = CheckResult::Status;

// The checks that read only the fixture, by name, in the order reported.
const std::vector<std::string> kStaticNames = {
    "max_user_namespaces",
    "unprivileged_userns_clone",
    "AppArmor user namespace restriction",
    "kernel >= 5.11 (overlay in a user namespace)",
    "fuse filesystem",
    "overlay filesystem",
    "/dev/fuse usable by users",
};

class SystemCheckTest : public test::FolderTest {
 protected:
  SystemCheckOptions options;

  void SetUp() override {
    fs::create_directories(root / "proc");
    options.proc = root / "proc";
    options.dev_fuse = "/dev/null";  // a character device anyone may open
    options.live = false;
  }

  void write(const std::string& relative, const std::string& text) {
    fs::path p = root / "proc" / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  // A host where everything is in place.
  void good_host() {
    write("sys/user/max_user_namespaces", "63413\n");
    write("filesystems", "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\tfuse\nnodev\toverlay\n");
  }
  static const CheckResult& find(const std::vector<CheckResult>& results, const std::string& name) {
    for (const auto& r : results) {
      if (r.name == name) return r;
    }
    static const CheckResult none{"(missing)", Status::fail, "", ""};
    ADD_FAILURE() << "no check named '" << name << "'";
    return none;
  }
};

std::vector<std::string> names_of(const std::vector<CheckResult>& results) {
  std::vector<std::string> out;
  for (const auto& r : results) out.push_back(r.name);
  return out;
}

TEST_F(SystemCheckTest, AGoodHostPassesEveryCheckInOrder) {
  good_host();
  auto results = run_system_checks(options);
  EXPECT_EQ(names_of(results), kStaticNames);
  for (const auto& r : results) {
    SCOPED_TRACE(r.name);
    if (r.name == kStaticNames[3]) {
      // The running kernel's own version: OK or, before 5.11, WARN.
      EXPECT_NE(r.status, Status::fail);
      EXPECT_FALSE(r.detail.empty());
      continue;
    }
    EXPECT_EQ(r.status, Status::ok) << r.detail;
    EXPECT_TRUE(r.fix.empty()) << r.fix;
  }
  EXPECT_EQ(find(results, "max_user_namespaces").detail, "63413");
  EXPECT_EQ(find(results, "unprivileged_userns_clone").detail, "not restricted");
  EXPECT_EQ(find(results, "fuse filesystem").detail, "available");
  EXPECT_EQ(find(results, "/dev/fuse usable by users").detail, "mode 0666");
}

TEST_F(SystemCheckTest, EachProblemFailsWithAFix) {
  write("sys/user/max_user_namespaces", "0\n");
  write("sys/kernel/unprivileged_userns_clone", "0\n");
  write("sys/kernel/apparmor_restrict_unprivileged_userns", "1\n");
  write("filesystems", "nodev\tsysfs\n\text4\nnodev\tfuseblk\n");  // fuseblk is not fuse
  options.dev_fuse = root / "no-such-fuse";
  auto results = run_system_checks(options);
  ASSERT_EQ(names_of(results), kStaticNames);

  struct Want {
    std::string name, detail_part, fix_part;
  };
  for (const Want& want : {
           Want{"max_user_namespaces", "user.max_user_namespaces = 0",
                "sysctl -w user.max_user_namespaces="},
           Want{"unprivileged_userns_clone", "kernel.unprivileged_userns_clone = 0",
                "sysctl -w kernel.unprivileged_userns_clone=1"},
           Want{"AppArmor user namespace restriction",
                "kernel.apparmor_restrict_unprivileged_userns = 1", "apparmor"},
           Want{"fuse filesystem", "not in /proc/filesystems", "modprobe fuse"},
           Want{"overlay filesystem", "not in /proc/filesystems", "modprobe overlay"},
           Want{"/dev/fuse usable by users", (root / "no-such-fuse").string() + " is missing",
                "modprobe fuse"},
       }) {
    SCOPED_TRACE(want.name);
    const CheckResult& r = find(results, want.name);
    EXPECT_EQ(r.status, Status::fail);
    EXPECT_NE(r.detail.find(want.detail_part), std::string::npos) << r.detail;
    EXPECT_NE(r.fix.find(want.fix_part), std::string::npos) << r.fix;
  }
}

TEST_F(SystemCheckTest, AKernelWithoutUserNamespacesSaysSo) {
  // No max_user_namespaces at all; the Debian and AppArmor knobs absent too.
  write("filesystems", "nodev\tfuse\nnodev\toverlay\n");
  auto results = run_system_checks(options);
  const CheckResult& r = find(results, "max_user_namespaces");
  EXPECT_EQ(r.status, Status::fail);
  EXPECT_NE(r.detail.find("CONFIG_USER_NS"), std::string::npos) << r.detail;
  EXPECT_NE(r.fix.find("CONFIG_USER_NS=y"), std::string::npos) << r.fix;
  EXPECT_EQ(find(results, "unprivileged_userns_clone").status, Status::ok);
  EXPECT_EQ(find(results, "AppArmor user namespace restriction").status, Status::ok);
}

TEST_F(SystemCheckTest, KnobsThatAllowUserNamespacesPass) {
  good_host();
  write("sys/kernel/unprivileged_userns_clone", "1\n");
  write("sys/kernel/apparmor_restrict_unprivileged_userns", "0\n");
  auto results = run_system_checks(options);
  EXPECT_EQ(find(results, "unprivileged_userns_clone").status, Status::ok);
  EXPECT_EQ(find(results, "unprivileged_userns_clone").detail,
            "kernel.unprivileged_userns_clone = 1");
  EXPECT_EQ(find(results, "AppArmor user namespace restriction").status, Status::ok);
}

TEST_F(SystemCheckTest, ADevFuseThatIsNotADeviceIsMissing) {
  good_host();
  std::ofstream(root / "fuse") << "a regular file";
  options.dev_fuse = root / "fuse";
  const auto results = run_system_checks(options);
  const CheckResult& r = find(results, "/dev/fuse usable by users");
  EXPECT_EQ(r.status, Status::fail);
  EXPECT_NE(r.detail.find("is missing"), std::string::npos) << r.detail;
  EXPECT_FALSE(r.fix.empty());
}

TEST_F(SystemCheckTest, LiveChecksComeAfterWithAVerdictAndAFixWhenTheyFail) {
  // Whether namespaces work here depends on the machine: only the shape of
  // the report is fixed.
  good_host();
  options.live = true;
  options.dev_fuse = "/dev/fuse";
  auto results = run_system_checks(options);
  std::vector<std::string> want = kStaticNames;
  want.insert(want.end(), {"user + mount namespace as you", "FUSE mount in a user namespace",
                           "overlayfs in a user namespace"});
  ASSERT_EQ(names_of(results), want);
  for (size_t i = kStaticNames.size(); i < results.size(); ++i) {
    const CheckResult& r = results[i];
    SCOPED_TRACE(r.name);
    EXPECT_NE(r.status, Status::warn);
    if (r.status == Status::ok) {
      EXPECT_EQ(r.detail, "works");
      EXPECT_TRUE(r.fix.empty());
    } else {
      EXPECT_FALSE(r.detail.empty());
      EXPECT_FALSE(r.fix.empty());
    }
  }
}

TEST(CheckStatus, PrintsAsTheReportShowsIt) {
  EXPECT_STREQ(to_string(Status::ok), "OK");
  EXPECT_STREQ(to_string(Status::warn), "WARN");
  EXPECT_STREQ(to_string(Status::fail), "FAIL");
}

}  // namespace
}  // namespace deepops
