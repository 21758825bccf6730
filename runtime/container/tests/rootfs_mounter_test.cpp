// RootfsMounter's path handling inside a container root, without mounting:
// a fake root in the test's folder holds symlinks that try to lead out of it
// (absolute, climbing with "..", and a chain of both) towards a folder beside
// it, `outside`. Resolved in the root, each of them must land on the root's
// own copy of that folder, `mirror`, and never on the real one.
#include "container/rootfs_mounter.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;
using Create = MountEntry::Create;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A file's identity: its device and inode.
using FileId = std::pair<dev_t, ino_t>;

FileId id_of(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0) << "fd " << fd;
  return {st.st_dev, st.st_ino};
}

FileId id_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
  return {st.st_dev, st.st_ino};
}

bool kernel_has_openat2() {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT;
  long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));
  if (fd >= 0) close(static_cast<int>(fd));
  return !(fd < 0 && errno == ENOSYS);
}

class RootfsMounterTest : public test::FolderTest {
 protected:
  fs::path rootfs = root / "rootfs";
  fs::path outside = root / "outside";
  // Where `outside`'s absolute path leads when resolved inside rootfs.
  fs::path mirror = rootfs / outside.relative_path();

  void SetUp() override {
    if (!kernel_has_openat2()) GTEST_SKIP() << "this kernel has no openat2 (Linux 5.6)";
    write(outside / "sentinel", "host secret\n");
    write(mirror / "sentinel", "in-root copy\n");
    write(rootfs / "etc/hostname", "inside\n");
    // "/etc" on the host; rootfs/etc inside.
    link("/etc", rootfs / "etc/escape");
    // More ".." than rootfs/etc is deep, then outside's path: on the host,
    // `outside` itself.
    std::string climb;
    for (const auto& part : (rootfs / "etc").relative_path()) {
      (void)part;
      climb += "../";
    }
    link(climb + "../../../" + outside.relative_path().string(), rootfs / "etc/up");
    link(outside, rootfs / "etc/host-abs");
    // /etc/chain -> /links/hop -> ../etc/up -> (climbing) outside.
    fs::create_directories(rootfs / "links");
    link("../etc/up", rootfs / "links/hop");
    link("/links/hop", rootfs / "etc/chain");
  }

  static void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  static void link(const fs::path& to, const fs::path& at) {
    fs::create_directories(at.parent_path());
    fs::create_symlink(to, at);
  }

  // `target` resolves, inside the root, to `expected` (a host path).
  void expect_resolves_to(RootfsMounter& m, const std::string& target, const fs::path& expected) {
    SCOPED_TRACE(target);
    UniqueFd fd = m.resolve(target, Create::none, false);
    ASSERT_TRUE(fd);
    EXPECT_EQ(id_of(fd.get()), id_of(expected));
    EXPECT_EQ(fs::read_symlink(fd_path(fd.get())), fs::canonical(expected));
  }

  // m.symlink(path, target) leaves a link to `target` at `host_path`.
  static void expect_symlink_made(RootfsMounter& m, const std::string& path,
                                  const std::string& target, const fs::path& host_path) {
    m.symlink(path, target);
    EXPECT_TRUE(fs::is_symlink(host_path)) << host_path;
    EXPECT_EQ(fs::read_symlink(host_path), target) << path;
  }

  // The real `outside` is as SetUp left it: one file, unchanged.
  void expect_outside_untouched() {
    EXPECT_EQ(read_text(outside / "sentinel"), "host secret\n");
    size_t entries = 0;
    for (const auto& e : fs::directory_iterator(outside)) {
      (void)e;
      ++entries;
    }
    EXPECT_EQ(entries, 1u) << "something was created in " << outside;
  }
};

TEST_F(RootfsMounterTest, TheRootResolvesToItself) {
  RootfsMounter m(rootfs);
  expect_resolves_to(m, "/", rootfs);
  EXPECT_EQ(id_of(m.root_fd()), id_of(rootfs));
}

TEST_F(RootfsMounterTest, AnAbsoluteSymlinkIsFollowedInsideTheRoot) {
  RootfsMounter m(rootfs);
  expect_resolves_to(m, "/etc/escape", rootfs / "etc");
  expect_resolves_to(m, "/etc/escape/hostname", rootfs / "etc/hostname");
  expect_resolves_to(m, "/etc/host-abs/sentinel", mirror / "sentinel");
}

TEST_F(RootfsMounterTest, ARelativeSymlinkClimbingOutStopsAtTheRoot) {
  RootfsMounter m(rootfs);
  // The link leads to `outside` on the host (as a plain open sees it).
  ASSERT_EQ(id_of(rootfs / "etc/up/sentinel"), id_of(outside / "sentinel"));
  expect_resolves_to(m, "/etc/up", mirror);
  expect_resolves_to(m, "/etc/up/sentinel", mirror / "sentinel");
  // As in a path given: ".." at the root stays there.
  expect_resolves_to(m, "/../../../etc/hostname", rootfs / "etc/hostname");
}

TEST_F(RootfsMounterTest, AChainOfSymlinksStaysInsideTheRoot) {
  RootfsMounter m(rootfs);
  expect_resolves_to(m, "/etc/chain/sentinel", mirror / "sentinel");
  expect_resolves_to(m, "/links/hop", mirror);
}

TEST_F(RootfsMounterTest, ReadFileReadsTheRootsFileThroughEscapingLinks) {
  RootfsMounter m(rootfs);
  EXPECT_EQ(m.read_file("/etc/hostname"), "inside\n");
  EXPECT_EQ(m.read_file("/etc/up/sentinel"), "in-root copy\n");
  EXPECT_EQ(m.read_file("/etc/chain/sentinel"), "in-root copy\n");
  EXPECT_EQ(m.read_file("/etc/host-abs/sentinel"), "in-root copy\n");
}

TEST_F(RootfsMounterTest, ReadFileOfAnAbsentFileOrAFolderIsNothing) {
  RootfsMounter m(rootfs);
  EXPECT_EQ(m.read_file("/etc/absent"), std::nullopt);
  EXPECT_EQ(m.read_file("/no/such/folder/file"), std::nullopt);
  EXPECT_EQ(m.read_file("/etc"), std::nullopt);
  fs::remove(mirror / "sentinel");
  // Present on the host, absent in the root.
  EXPECT_EQ(m.read_file("/etc/up/sentinel"), std::nullopt);
}

TEST_F(RootfsMounterTest, ExistsLooksInsideTheRootOnly) {
  RootfsMounter m(rootfs);
  EXPECT_TRUE(m.exists("/etc/hostname"));
  EXPECT_TRUE(m.exists("/etc/escape/hostname"));
  EXPECT_FALSE(m.exists("/etc/absent"));
  // A folder of the host's, beside the root, that the root has no copy of.
  fs::create_directories(root / "host-only");
  link(root / "host-only", rootfs / "etc/host-only");
  EXPECT_TRUE(fs::exists(rootfs / "etc/host-only"));
  EXPECT_FALSE(m.exists("/etc/host-only"));
}

TEST_F(RootfsMounterTest, WriteFileThroughEscapingLinksWritesInsideTheRoot) {
  RootfsMounter m(rootfs);
  m.write_file("/etc/up/sentinel", "via up\n");
  EXPECT_EQ(read_text(mirror / "sentinel"), "via up\n");
  m.write_file("/etc/chain/from-chain", "via chain\n");
  EXPECT_EQ(read_text(mirror / "from-chain"), "via chain\n");
  m.write_file("/etc/host-abs/from-abs", "via abs\n");
  EXPECT_EQ(read_text(mirror / "from-abs"), "via abs\n");
  m.write_file("/etc/escape/hostname", "replaced\n");
  EXPECT_EQ(read_text(rootfs / "etc/hostname"), "replaced\n");
  expect_outside_untouched();
}

TEST_F(RootfsMounterTest, WriteFileCreatesMissingFoldersInsideTheRoot) {
  RootfsMounter m(rootfs);
  m.write_file("/etc/up/new/deeper/file", "made\n");
  EXPECT_EQ(read_text(mirror / "new/deeper/file"), "made\n");
  expect_outside_untouched();
}

TEST_F(RootfsMounterTest, WriteFileDoesNotFollowALinkInItsLastComponent) {
  link(outside / "sentinel", rootfs / "etc/to-sentinel");
  RootfsMounter m(rootfs);
  EXPECT_THROW(m.write_file("/etc/to-sentinel", "overwritten\n"), Error);
  EXPECT_EQ(read_text(mirror / "sentinel"), "in-root copy\n");
  expect_outside_untouched();
}

TEST_F(RootfsMounterTest, SymlinkCreatesALinkInsideTheRoot) {
  RootfsMounter m(rootfs);
  expect_symlink_made(m, "/etc/new-link", "/some/target", rootfs / "etc/new-link");
  expect_symlink_made(m, "/etc/up/made-link", "relative/target", mirror / "made-link");
  expect_symlink_made(m, "/new/folder/link", "x", rootfs / "new/folder/link");
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(rootfs / "new/folder")));
  expect_outside_untouched();
}

TEST_F(RootfsMounterTest, SymlinkReplacesAFileOrALink) {
  RootfsMounter m(rootfs);
  expect_symlink_made(m, "/etc/hostname", "/run/hostname", rootfs / "etc/hostname");
  expect_symlink_made(m, "/etc/escape", "/elsewhere", rootfs / "etc/escape");
  // The link replaced, not what it pointed to: the root's /etc is still there.
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(rootfs / "etc")));
}

TEST_F(RootfsMounterTest, ResolveCreatesAMissingFolderOrFileInsideTheRoot) {
  RootfsMounter m(rootfs);
  expect_resolves_to(m, "/etc/escape", rootfs / "etc");  // nothing created on the way
  UniqueFd dir = m.resolve("/etc/up/made/dir", Create::dir, false);
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(mirror / "made/dir")));
  EXPECT_EQ(id_of(dir.get()), id_of(mirror / "made/dir"));
  UniqueFd file = m.resolve("/etc/chain/made-file", Create::file, true);
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(mirror / "made-file")));
  EXPECT_EQ(id_of(file.get()), id_of(mirror / "made-file"));
  expect_outside_untouched();
}

TEST_F(RootfsMounterTest, ResolveAutomaticCreatesWhatTheSourceIs) {
  RootfsMounter m(rootfs);
  m.resolve("/auto/as-dir", Create::automatic, true);
  m.resolve("/auto/as-file", Create::automatic, false);
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(rootfs / "auto/as-dir")));
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(rootfs / "auto/as-file")));
}

TEST_F(RootfsMounterTest, ResolveWithoutCreateOfAMissingTargetIsAnError) {
  RootfsMounter m(rootfs);
  try {
    m.resolve("/etc/missing", Create::none, true);
    ADD_FAILURE() << "resolved a missing target";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/etc/missing"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("x-create"), std::string::npos) << e.hint();
  }
  EXPECT_FALSE(fs::exists(rootfs / "etc/missing"));
}

TEST_F(RootfsMounterTest, ResolveKeepsAnExistingFileInPlace) {
  RootfsMounter m(rootfs);
  const FileId before = id_of(rootfs / "etc/hostname");
  UniqueFd fd = m.resolve("/etc/hostname", Create::dir, true);
  EXPECT_EQ(id_of(fd.get()), before);
  EXPECT_EQ(read_text(rootfs / "etc/hostname"), "inside\n");
}

}  // namespace
}  // namespace deepops
