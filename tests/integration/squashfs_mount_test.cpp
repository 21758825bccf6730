// Mounts an image written by SquashfsWriter the three ways the runtime may:
// the kernel (loop device), squashfuse and squashfuse_ll, and reads it back.
// Needs root for the loop mount; each way is skipped where its device is
// missing.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "image/squashfs_writer.hpp"
#include "subprocess.hpp"

namespace deepops {
namespace {

namespace fs = std::filesystem;
using test::run_process;

constexpr int kBigDirEntries = 3000;

std::unique_ptr<Node> node(NodeType type, uint32_t mode) {
  auto n = std::make_unique<Node>();
  n->type = type;
  n->mode = mode;
  return n;
}

std::string random_bytes(size_t size) {
  std::mt19937_64 rng(42);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

std::string big_dir_name(int i) {
  char name[64];
  std::snprintf(name, sizeof name, "entry-%05d-long-enough-to-need-index", i);
  return name;
}

std::string read_file(const fs::path& path) {
  std::string data(fs::file_size(path), '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  return data;
}

class SquashfsMount : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sqw-mount-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    image_ = tmp_ / "image.sqfs";
    mnt_ = tmp_ / "mnt";
    fs::create_directory(mnt_);
    write_image();
  }
  void TearDown() override {
    unmount();
    fs::remove_all(tmp_);
  }

  void write_image() {
    SquashfsWriter w(image_, {});
    Node root;
    auto add_file = [&](Node& dir, const std::string& name, const std::string& data) -> Node& {
      Node& n = *(dir.children[name] = node(NodeType::regular, 0644));
      n.content = w.begin_file();
      w.append(data.data(), data.size());
      w.end_file();
      return n;
    };
    Node& big = *(root.children["big"] = node(NodeType::directory, 0755));
    for (int i = 0; i < kBigDirEntries; ++i) add_file(big, big_dir_name(i), std::to_string(i));
    add_file(big, "caf\xc3\xa9", "utf-8");
    add_file(big, "\xff-high-byte", "high");
    Node& a = *(root.children["a"] = node(NodeType::directory, 0750));
    a.children["sub1"] = node(NodeType::directory, 0700);
    a.children["sub2"] = node(NodeType::directory, 0700);
    Node& data = add_file(a, "data", random_bytes(1 << 20));
    data.xattrs["user.origin"] = "layer-3";
    root.children["link-to-data"] = node(NodeType::regular, 0644);
    root.children["link-to-data"]->content = data.content;
    root.children["link-to-data"]->xattrs = data.xattrs;
    Node& disk = *(root.children["disk"] = node(NodeType::block_device, 0600));
    disk.rdev_major = 259, disk.rdev_minor = 65536;
    w.finish(root);
  }

  bool mount(const std::vector<std::string>& argv, std::vector<std::string> unmount_argv) {
    auto result = run_process(argv);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    if (result.exit_code != 0) return false;
    unmount_argv_ = std::move(unmount_argv);
    // FUSE daemons may return before the mount shows: wait, bounded.
    struct stat parent {
    }, mnt{};
    for (int i = 0; i < 100; ++i) {
      if (::stat(tmp_.c_str(), &parent) == 0 && ::stat(mnt_.c_str(), &mnt) == 0 &&
          parent.st_dev != mnt.st_dev) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "mount did not appear";
    return false;
  }

  void unmount() {
    if (unmount_argv_.empty()) return;
    auto result = run_process(unmount_argv_);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    unmount_argv_.clear();
  }

  void check_contents(bool stable_inodes) {
    EXPECT_EQ(read_file(mnt_ / "a/data"), random_bytes(1 << 20));
    size_t entries = 0;
    for (const auto& e : fs::directory_iterator(mnt_ / "big")) ++entries, (void)e;
    EXPECT_EQ(entries, kBigDirEntries + 2u);
    // Lookups by name go through the directory index.
    for (int i : {0, 1, 1234, 2047, kBigDirEntries - 1}) {
      EXPECT_EQ(read_file(mnt_ / "big" / big_dir_name(i)), std::to_string(i));
    }
    EXPECT_EQ(read_file(mnt_ / "big/caf\xc3\xa9"), "utf-8");
    EXPECT_EQ(read_file(mnt_ / "big/\xff-high-byte"), "high");

    struct stat st {
    }, link{};
    ASSERT_EQ(::stat((mnt_ / "a").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 4u);  // ".", its entry in the root, two subdirectories
    EXPECT_EQ(st.st_mode & 07777, 0750u);
    ASSERT_EQ(::stat((mnt_ / "a/data").c_str(), &st), 0);
    ASSERT_EQ(::stat((mnt_ / "link-to-data").c_str(), &link), 0);
    EXPECT_EQ(st.st_nlink, 2u);
    if (stable_inodes) {
      EXPECT_EQ(st.st_ino, link.st_ino);
    }
    ASSERT_EQ(::stat((mnt_ / "disk").c_str(), &st), 0);
    EXPECT_TRUE(S_ISBLK(st.st_mode));
    EXPECT_EQ(major(st.st_rdev), 259u);
    EXPECT_EQ(minor(st.st_rdev), 65536u);
    char value[32];
    ssize_t n = ::getxattr((mnt_ / "a/data").c_str(), "user.origin", value, sizeof value);
    EXPECT_EQ(std::string(value, static_cast<size_t>(std::max<ssize_t>(n, 0))), "layer-3");
  }

  fs::path tmp_, image_, mnt_;
  std::vector<std::string> unmount_argv_;  // empty when nothing is mounted
};

TEST_F(SquashfsMount, Kernel) {
  if (::geteuid() != 0) GTEST_SKIP() << "a loop mount needs root";
  if (!fs::exists("/dev/loop-control")) GTEST_SKIP() << "no loop devices";
  ASSERT_TRUE(mount({"mount", "-t", "squashfs", "-o", "loop,ro", image_.string(), mnt_.string()},
                    {"umount", mnt_.string()}));
  check_contents(true);
}

TEST_F(SquashfsMount, Squashfuse) {
  if (!fs::exists("/dev/fuse")) GTEST_SKIP() << "no /dev/fuse";
  ASSERT_TRUE(
      mount({"squashfuse", image_.string(), mnt_.string()}, {"fusermount3", "-u", mnt_.string()}));
  check_contents(false);  // squashfuse numbers inodes itself
}

TEST_F(SquashfsMount, SquashfuseLowLevel) {
  if (!fs::exists("/dev/fuse")) GTEST_SKIP() << "no /dev/fuse";
  ASSERT_TRUE(mount({"squashfuse_ll", image_.string(), mnt_.string()},
                    {"fusermount3", "-u", mnt_.string()}));
  check_contents(true);
}

}  // namespace
}  // namespace deepops
