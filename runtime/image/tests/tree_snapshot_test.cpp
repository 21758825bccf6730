// A container's merged root written as an image (export, --container-save),
// read back with unsquashfs. The mount boundary (a mount inside the tree is
// left out) and device nodes need privileges a unit test does not have; the
// integration tests cover them.
#include "image/tree_snapshot.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "squashfs_listing.hpp"
#include "subprocess.hpp"
#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

namespace fs = std::filesystem;
using test::run_process;

std::string cat(const fs::path& image, const std::string& path) {
  auto result = run_process({"unsquashfs", "-cat", image.string(), path});
  EXPECT_EQ(result.exit_code, 0) << path << ": " << result.output;
  return result.output;
}

void write(const fs::path& p, const std::string& text, fs::perms perms = fs::perms{0644}) {
  std::ofstream(p, std::ios::binary) << text;
  fs::permissions(p, perms);
}

void set_mtime(const fs::path& p, time_t when) {
  const timespec times[2] = {{when, 0}, {when, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << std::strerror(errno);
}

class TreeSnapshotTest : public test::FolderTest {
 protected:
  fs::path tree = root / "tree";
  fs::path image = root / "out.sqsh";
  SquashfsOptions options;

  void SetUp() override {
    fs::create_directories(tree);
    options.workers = 1;
  }
};

TEST_F(TreeSnapshotTest, FilesFoldersSymlinksAndEmptyFilesAreKept) {
  write(tree / "hello.txt", "hello world\n", fs::perms{0640});
  write(tree / "empty", "");
  fs::create_directories(tree / "sub/deeper");
  fs::permissions(tree / "sub", fs::perms{0750});
  write(tree / "sub/nested.txt", "nested\n");
  write(tree / "sub/deeper/run.sh", "#!/bin/sh\necho hi\n", fs::perms{0755});
  fs::create_directories(tree / "emptydir");
  fs::create_symlink("sub/nested.txt", tree / "link");
  fs::create_symlink("/does/not/exist", tree / "dangling");
  const std::string big(300 * 1024 + 17, 'x');  // more than two blocks
  write(tree / "big", big);
  set_mtime(tree / "hello.txt", 1700000000);

  snapshot_to_squashfs(tree, image, options);

  auto listed = test::list_squashfs(image);
  EXPECT_EQ(listed.size(), 11u);  // "/" and ten entries
  ASSERT_TRUE(listed.count("/hello.txt"));
  EXPECT_EQ(listed["/hello.txt"].mode, "-rw-r-----");
  EXPECT_EQ(listed["/hello.txt"].size, "12");
  EXPECT_EQ(listed["/hello.txt"].time, "2023-11-14 22:13");
  ASSERT_TRUE(listed.count("/empty"));
  EXPECT_EQ(listed["/empty"].mode, "-rw-r--r--");
  EXPECT_EQ(listed["/empty"].size, "0");
  ASSERT_TRUE(listed.count("/sub"));
  EXPECT_EQ(listed["/sub"].mode, "drwxr-x---");
  EXPECT_TRUE(listed.count("/sub/nested.txt"));
  ASSERT_TRUE(listed.count("/sub/deeper/run.sh"));
  EXPECT_EQ(listed["/sub/deeper/run.sh"].mode, "-rwxr-xr-x");
  ASSERT_TRUE(listed.count("/emptydir"));
  EXPECT_EQ(listed["/emptydir"].mode.front(), 'd');
  ASSERT_TRUE(listed.count("/link"));
  EXPECT_EQ(listed["/link"].mode.front(), 'l');
  EXPECT_EQ(listed["/link"].target, "sub/nested.txt");
  ASSERT_TRUE(listed.count("/dangling"));
  EXPECT_EQ(listed["/dangling"].target, "/does/not/exist");
  EXPECT_EQ(listed["/big"].size, std::to_string(big.size()));

  EXPECT_EQ(cat(image, "hello.txt"), "hello world\n");
  EXPECT_EQ(cat(image, "sub/nested.txt"), "nested\n");
  EXPECT_EQ(cat(image, "sub/deeper/run.sh"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(cat(image, "empty"), "");
  EXPECT_EQ(cat(image, "big"), big);
}

TEST_F(TreeSnapshotTest, SymlinksAreStoredNotFollowed) {
  fs::create_directories(root / "outside");
  write(root / "outside/secret", "not in the image\n");
  fs::create_directory_symlink(root / "outside", tree / "out-dir");
  fs::create_symlink(root / "outside/secret", tree / "out-file");

  snapshot_to_squashfs(tree, image, options);

  auto listed = test::list_squashfs(image);
  EXPECT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed["/out-dir"].mode.front(), 'l');
  EXPECT_EQ(listed["/out-dir"].target, (root / "outside").string());
  EXPECT_EQ(listed["/out-file"].mode.front(), 'l');
  EXPECT_EQ(listed["/out-file"].target, (root / "outside/secret").string());
  EXPECT_FALSE(listed.count("/out-dir/secret"));
}

TEST_F(TreeSnapshotTest, EverythingIsOwnedByRootAndSetIdBitsAreCleared) {
  write(tree / "mine", "x");
  write(tree / "setuid", "x", fs::perms{04755});
  write(tree / "setgid", "x", fs::perms{02755});
  fs::create_directories(tree / "shared");
  fs::permissions(tree / "shared", fs::perms{01777});
  // Owned by someone other than root, whoever runs the test.
  if (geteuid() == 0) {
    for (const char* name : {"mine", "setuid", "setgid", "shared"}) {
      ASSERT_EQ(lchown((tree / name).c_str(), 1234, 1234), 0) << std::strerror(errno);
    }
    // chown clears the set-id bits: set them again.
    fs::permissions(tree / "setuid", fs::perms{04755});
    fs::permissions(tree / "setgid", fs::perms{02755});
  }
  struct stat st {};
  ASSERT_EQ(stat((tree / "setuid").c_str(), &st), 0);
  ASSERT_NE(st.st_mode & S_ISUID, 0u) << "the fixture has no setuid bit";
  ASSERT_NE(st.st_uid, 0u);

  snapshot_to_squashfs(tree, image, options);

  auto listed = test::list_squashfs(image);
  for (const auto& [path, entry] : listed) EXPECT_EQ(entry.owner, "0/0") << path;
  EXPECT_EQ(listed["/setuid"].mode, "-rwxr-xr-x");
  EXPECT_EQ(listed["/setgid"].mode, "-rwxr-xr-x");
  EXPECT_EQ(listed["/shared"].mode, "drwxrwxrwt");  // the sticky bit stays
}

TEST_F(TreeSnapshotTest, HardLinksStayOneFileAndSocketsAreLeftOut) {
  write(tree / "a", "shared bytes\n");
  fs::create_hard_link(tree / "a", tree / "b");
  ASSERT_EQ(mkfifo((tree / "pipe").c_str(), 0600), 0) << std::strerror(errno);
  int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string sock_path = (tree / "sock").string();
  ASSERT_LT(sock_path.size(), sizeof(addr.sun_path));
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  close(sock);
  ASSERT_TRUE(fs::is_socket(tree / "sock"));

  snapshot_to_squashfs(tree, image, options);

  auto listed = test::list_squashfs(image);
  EXPECT_FALSE(listed.count("/sock"));
  ASSERT_TRUE(listed.count("/pipe"));
  EXPECT_EQ(listed["/pipe"].mode, "prw-------");
  EXPECT_EQ(cat(image, "a"), "shared bytes\n");
  EXPECT_EQ(cat(image, "b"), "shared bytes\n");

  // Extracted, a and b are one inode again.
  const fs::path out = root / "extracted";
  auto result = run_process({"unsquashfs", "-no-progress", "-d", out.string(), image.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  struct stat a {
  }, b{};
  ASSERT_EQ(stat((out / "a").c_str(), &a), 0);
  ASSERT_EQ(stat((out / "b").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
}

TEST_F(TreeSnapshotTest, AnEmptyFolderGivesAnImageWithOnlyItsRoot) {
  fs::permissions(tree, fs::perms{0700});
  snapshot_to_squashfs(tree, image, options);
  auto listed = test::list_squashfs(image);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed["/"].mode, "drwx------");
  EXPECT_EQ(listed["/"].owner, "0/0");
}

TEST_F(TreeSnapshotTest, AMissingFolderIsAnErrorNamingIt) {
  try {
    snapshot_to_squashfs(root / "missing", image, options);
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_found) << e.what();
    EXPECT_NE(std::string(e.what()).find((root / "missing").string()), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(image));  // nothing written before the folder opened
}

}  // namespace
}  // namespace deepops
