#include "image/squashfs_writer.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "squashfs_listing.hpp"
#include "subprocess.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

namespace fs = std::filesystem;
using test::run_process;

constexpr uint32_t kBlock = 128 * 1024;

// ---- building trees

std::unique_ptr<Node> dir(uint32_t mode = 0755, uint32_t uid = 0, uint32_t gid = 0) {
  auto node = std::make_unique<Node>();
  node->type = NodeType::directory;
  node->mode = mode;
  node->uid = uid;
  node->gid = gid;
  return node;
}

std::unique_ptr<Node> leaf(NodeType type, uint32_t mode = 0644) {
  auto node = std::make_unique<Node>();
  node->type = type;
  node->mode = mode;
  return node;
}

Node& add(Node& parent, const std::string& name, std::unique_ptr<Node> child) {
  return *(parent.children[name] = std::move(child));
}

std::string random_bytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

// Compressible: text lines with counters, like logs or source code.
std::string text_bytes(size_t size, uint64_t seed) {
  std::string out;
  for (uint64_t i = 0; out.size() < size; ++i) {
    out += "line " + std::to_string(seed) + ":" + std::to_string(i) + " the quick brown fox\n";
  }
  out.resize(size);
  return out;
}

// Appends in odd chunk sizes, including empty ones, as a network stream does.
std::shared_ptr<FileContent> write_file(SquashfsWriter& w, const std::string& data) {
  static constexpr size_t kChunks[] = {1, 0, 7, 4093, 65537, 13, 131071, 3, 200000};
  auto content = w.begin_file();
  size_t done = 0;
  for (size_t i = 0; done < data.size(); ++i) {
    size_t n = std::min(kChunks[i % std::size(kChunks)], data.size() - done);
    w.append(data.data() + done, n);
    done += n;
  }
  w.end_file();
  return content;
}

Node& add_file(Node& parent, const std::string& name, SquashfsWriter& w, const std::string& data,
               uint32_t mode = 0644) {
  Node& node = add(parent, name, leaf(NodeType::regular, mode));
  node.content = write_file(w, data);
  return node;
}

// ---- reading images back with unsquashfs

std::string read_file(const fs::path& path) {
  std::string data(fs::file_size(path), '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  return data;
}

class SquashfsWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sqw-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    tmp_ = pattern;
    image_ = tmp_ / "image.sqfs";
  }
  void TearDown() override { fs::remove_all(tmp_); }

  fs::path extract(const fs::path& image, const std::string& name = "out") {
    fs::path out = tmp_ / name;
    auto result = run_process({"unsquashfs", "-no-progress", "-d", out.string(), image.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return out;
  }

  fs::path tmp_, image_;
};

// ---- tests

TEST_F(SquashfsWriterTest, EmptyRoot) {
  SquashfsWriter w(image_, {});
  auto root = dir(0700, 1000, 1000);
  root->mtime = 1700000000;
  w.finish(*root);

  EXPECT_EQ(fs::file_size(image_) % 4096, 0u);
  auto listed = test::list_squashfs(image_);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed["/"].mode, "drwx------");
  EXPECT_EQ(listed["/"].owner, "1000/1000");
  EXPECT_EQ(listed["/"].time, "2023-11-14 22:13");
  auto stat = run_process({"unsquashfs", "-s", image_.string()});
  EXPECT_EQ(stat.exit_code, 0) << stat.output;
  EXPECT_NE(stat.output.find("Compression zstd"), std::string::npos) << stat.output;
  EXPECT_NE(stat.output.find("Number of inodes 1"), std::string::npos) << stat.output;
}

TEST_F(SquashfsWriterTest, NestedDirectoriesKeepModesAndOwners) {
  SquashfsWriter w(image_, {});
  auto root = dir();
  Node& a = add(*root, "a", dir(0750, 1000, 100));
  Node& b = add(a, "b", dir(01777, 4000000000u, 65534));
  add(b, "c", dir(02711, 0, 5));
  add_file(b, "setuid", w, "x", 04755).uid = 33;
  w.finish(*root);

  auto listed = test::list_squashfs(image_);
  EXPECT_EQ(listed["/a"].mode, "drwxr-x---");
  EXPECT_EQ(listed["/a"].owner, "1000/100");
  EXPECT_EQ(listed["/a/b"].mode, "drwxrwxrwt");
  EXPECT_EQ(listed["/a/b"].owner, "4000000000/65534");
  EXPECT_EQ(listed["/a/b/c"].mode, "drwx--s--x");
  EXPECT_EQ(listed["/a/b/c"].owner, "0/5");
  EXPECT_EQ(listed["/a/b/setuid"].mode, "-rwsr-xr-x");
  EXPECT_EQ(listed["/a/b/setuid"].owner, "33/0");
}

class SquashfsWriterCompression : public SquashfsWriterTest,
                                  public ::testing::WithParamInterface<SquashfsCompression> {};

// Sizes around the block size, random (incompressible) and text content, a
// file with a sparse (all-zero) block, and a duplicate.
TEST_P(SquashfsWriterCompression, FileContentsRoundTrip) {
  SquashfsOptions options;
  options.compression = GetParam();
  SquashfsWriter w(image_, options);
  auto root = dir();
  std::map<std::string, std::string> files;
  size_t sizes[] = {0, 1, kBlock - 1, kBlock, kBlock + 1, 3 * kBlock + 5};
  for (size_t i = 0; i < std::size(sizes); ++i) {
    files["random-" + std::to_string(sizes[i])] = random_bytes(sizes[i], i);
    files["text-" + std::to_string(sizes[i])] = text_bytes(sizes[i], i);
  }
  files["sparse"] = text_bytes(100, 1) + std::string(3 * kBlock, '\0') + "tail";
  files["duplicate"] = files["random-" + std::to_string(3 * kBlock + 5)];
  for (const auto& [name, data] : files) add_file(*root, name, w, data);
  w.finish(*root);

  fs::path out = extract(image_);
  for (const auto& [name, data] : files) {
    EXPECT_EQ(fs::file_size(out / name), data.size()) << name;
    EXPECT_TRUE(read_file(out / name) == data) << name;
  }
  auto stat = run_process({"unsquashfs", "-s", image_.string()});
  std::string want =
      GetParam() == SquashfsCompression::none ? "Data is uncompressed" : "Data is compressed";
  EXPECT_NE(stat.output.find(want), std::string::npos) << stat.output;
}

std::string compression_name(const ::testing::TestParamInfo<SquashfsCompression>& param) {
  static const char* const kNames[] = {"zstd", "lz4", "gzip", "xz", "none"};
  return kNames[static_cast<int>(param.param)];
}

INSTANTIATE_TEST_SUITE_P(Squashfs, SquashfsWriterCompression,
                         ::testing::Values(SquashfsCompression::zstd, SquashfsCompression::lz4,
                                           SquashfsCompression::gzip, SquashfsCompression::xz,
                                           SquashfsCompression::none),
                         compression_name);

// Long names push the listing past one 8 KiB metadata block, so the
// directory gets several headers and an index.
TEST_F(SquashfsWriterTest, LargeDirectory) {
  SquashfsWriter w(image_, {});
  auto root = dir();
  Node& big = add(*root, "big", dir());
  std::string padding(40, 'x');
  for (int i = 0; i < 300; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "%03d-", i);
    add_file(big, name + padding, w, "file " + std::to_string(i));
  }
  add(*root, "after", dir());
  w.finish(*root);

  auto listed = test::list_squashfs(image_);
  EXPECT_EQ(listed.size(), 303u);
  fs::path out = extract(image_);
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(out / "big")) {
    std::string name = entry.path().filename().string();
    EXPECT_EQ(read_file(entry.path()), "file " + std::to_string(std::stoi(name.substr(0, 3))));
    ++count;
  }
  EXPECT_EQ(count, 300u);
  auto cat = run_process({"unsquashfs", "-cat", image_.string(), "big/299-" + padding});
  EXPECT_EQ(cat.output, "file 299");
}

TEST_F(SquashfsWriterTest, Symlinks) {
  SquashfsWriter w(image_, {});
  auto root = dir();
  add_file(*root, "target", w, "data");
  Node& rel = add(*root, "relative", leaf(NodeType::symlink, 0777));
  rel.link_target = "target";
  Node& abs = add(*root, "absolute", leaf(NodeType::symlink, 0777));
  abs.link_target = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  abs.uid = 7;
  w.finish(*root);

  auto listed = test::list_squashfs(image_);
  EXPECT_EQ(listed["/relative"].mode, "lrwxrwxrwx");
  EXPECT_EQ(listed["/relative"].target, "target");
  EXPECT_EQ(listed["/absolute"].target, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(listed["/absolute"].owner, "7/0");
  fs::path out = extract(image_);
  EXPECT_EQ(fs::read_symlink(out / "relative"), "target");
  EXPECT_EQ(read_file(out / "relative"), "data");
}

TEST_F(SquashfsWriterTest, HardLinksShareOneInode) {
  SquashfsWriter w(image_, {});
  auto root = dir();
  auto content = write_file(w, random_bytes(kBlock + 10, 9));
  for (const char* name : {"a", "b"}) {
    Node& link = add(add(*root, name, dir()), "linked", leaf(NodeType::regular, 0600));
    link.content = content;
  }
  w.finish(*root);

  fs::path out = extract(image_);
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((out / "a/linked").c_str(), &a), 0);
  ASSERT_EQ(::stat((out / "b/linked").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(a.st_mode & 07777, 0600u);
  EXPECT_EQ(read_file(out / "b/linked"), random_bytes(kBlock + 10, 9));
  auto stat = run_process({"unsquashfs", "-s", image_.string()});
  EXPECT_NE(stat.output.find("Number of inodes 4"), std::string::npos) << stat.output;
}

TEST_F(SquashfsWriterTest, SpecialFilesInListing) {
  SquashfsWriter w(image_, {});
  auto root = dir();
  add(*root, "fifo", leaf(NodeType::fifo, 0620));
  add(*root, "socket", leaf(NodeType::socket, 0777));
  Node& null = add(*root, "null", leaf(NodeType::char_device, 0666));
  null.rdev_major = 1, null.rdev_minor = 3;
  Node& disk = add(*root, "sda1", leaf(NodeType::block_device, 0660));
  disk.rdev_major = 8, disk.rdev_minor = 1;
  disk.gid = 6;
  w.finish(*root);

  auto listed = test::list_squashfs(image_);
  EXPECT_EQ(listed["/fifo"].mode, "prw--w----");
  EXPECT_EQ(listed["/socket"].mode, "srwxrwxrwx");
  EXPECT_EQ(listed["/null"].mode, "crw-rw-rw-");
  EXPECT_EQ(listed["/null"].size, "1,  3");
  EXPECT_EQ(listed["/sda1"].mode, "brw-rw----");
  EXPECT_EQ(listed["/sda1"].size, "8,  1");
  EXPECT_EQ(listed["/sda1"].owner, "0/6");
}

TEST_F(SquashfsWriterTest, Xattrs) {
  SquashfsWriter w(image_, {});
  auto root = dir();
  Node& file = add_file(*root, "file", w, "data");
  file.xattrs["user.mime_type"] = "text/plain";
  file.xattrs["user.binary"] = std::string("\0\1\2", 3);
  Node& d = add(*root, "dir", dir());
  d.xattrs["user.mime_type"] = "text/plain";  // deduplicated with the file's
  add(d, "inner", dir());
  w.finish(*root);

  fs::path out = extract(image_);
  char value[64];
  ssize_t n = ::getxattr((out / "file").c_str(), "user.mime_type", value, sizeof value);
  ASSERT_EQ(n, 10) << std::strerror(errno);
  EXPECT_EQ(std::string(value, 10), "text/plain");
  n = ::getxattr((out / "file").c_str(), "user.binary", value, sizeof value);
  EXPECT_EQ(std::string(value, std::max<ssize_t>(n, 0)), std::string("\0\1\2", 3));
  n = ::getxattr((out / "dir").c_str(), "user.mime_type", value, sizeof value);
  EXPECT_EQ(n, 10);
  EXPECT_TRUE(fs::is_directory(out / "dir/inner"));
}

TEST_F(SquashfsWriterTest, UnsupportedXattrIsRejected) {
  SquashfsWriter w(image_, {});
  auto root = dir();
  add_file(*root, "file", w, "data").xattrs["system.posix_acl_access"] = "x";
  try {
    w.finish(*root);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("system.posix_acl_access"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("/file"), std::string::npos);
  }
}

// Worker threads must not change what is stored, only how fast.
TEST_F(SquashfsWriterTest, TwoWorkersWriteTheSameFiles) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 40; ++i) {
    size_t size = static_cast<size_t>(i) * 37 * 1024 + static_cast<size_t>(i);
    files["f" + std::to_string(i)] = i % 2 ? random_bytes(size, i) : text_bytes(size, i);
  }
  for (unsigned workers : {1u, 2u}) {
    SquashfsOptions options;
    options.workers = workers;
    fs::path image = tmp_ / ("w" + std::to_string(workers) + ".sqfs");
    SquashfsWriter w(image, options);
    auto root = dir();
    for (const auto& [name, data] : files) add_file(*root, name, w, data);
    w.finish(*root);
    fs::path out = extract(image, "out" + std::to_string(workers));
    for (const auto& [name, data] : files) EXPECT_TRUE(read_file(out / name) == data) << name;
  }
}

TEST_F(SquashfsWriterTest, FullDeviceIsNoSpace) {
  try {
    SquashfsWriter w("/dev/full", {});
    auto root = dir();
    add_file(*root, "f", w, random_bytes(4 * kBlock, 1));
    w.finish(*root);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::no_space) << e.describe();
    EXPECT_NE(e.hint().find("cache folder"), std::string::npos) << e.describe();
  }
}

// A write that fails mid-stream (here past RLIMIT_FSIZE) poisons the writer:
// every later call throws the same Error, and destruction is clean.
TEST_F(SquashfsWriterTest, WriteFailureMidStream) {
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Errc first = Errc::internal, later = Errc::internal;
  {
    SquashfsOptions options;
    options.workers = 2;
    SquashfsWriter w(image_, options);
    try {
      auto root = dir();
      for (int i = 0; i < 8; ++i)
        add_file(*root, std::to_string(i), w, random_bytes(kBlock * 2, i));
      w.finish(*root);
    } catch (const Error& e) {
      first = e.code();
    }
    try {
      w.begin_file();
    } catch (const Error& e) {
      later = e.code();
    }
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(first, Errc::no_space);
  EXPECT_EQ(later, Errc::no_space);
}

// The real ENOSPC mid-stream: a 1 MiB tmpfs in a user and mount namespace
// of a child process. Skipped where unprivileged user namespaces are off.
TEST_F(SquashfsWriterTest, FullFileSystemMidStream) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ::_exit(77);
    std::ofstream("/proc/self/setgroups") << "deny";
    std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
    std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
    if (::mount("tmpfs", tmp_.c_str(), "tmpfs", 0, "size=1m") != 0) ::_exit(77);
    try {
      SquashfsWriter w(tmp_ / "image", {});
      auto root = dir();
      for (int i = 0; i < 8; ++i) add_file(*root, std::to_string(i), w, random_bytes(kBlock, i));
      w.finish(*root);
    } catch (const Error& e) {
      ::_exit(e.code() == Errc::no_space && e.hint().find("cache folder") != std::string::npos ? 0
                                                                                               : 2);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no unprivileged user namespaces";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(SquashfsWriterTest, DestroyWithoutFinish) {
  for (bool file_open : {false, true}) {
    SquashfsOptions options;
    options.workers = 2;
    SquashfsWriter w(image_, options);
    auto kept = write_file(w, random_bytes(5 * kBlock + 3, 1));
    std::string big = text_bytes(20 * kBlock, 2);
    w.begin_file();
    w.append(big.data(), big.size());
    if (!file_open) w.end_file();
  }
}

TEST_F(SquashfsWriterTest, MisuseThrowsError) {
  SquashfsWriter w(image_, {});
  EXPECT_THROW(w.append("x", 1), Error);
  EXPECT_THROW(w.end_file(), Error);
  w.begin_file();
  EXPECT_THROW(w.begin_file(), Error);
  w.end_file();
  auto root = dir();
  Node& orphan = add(*root, "orphan", leaf(NodeType::regular));
  (void)orphan;  // no content
  EXPECT_THROW(w.finish(*root), Error);
  EXPECT_THROW(w.finish(*dir()), Error);  // once only
}

TEST_F(SquashfsWriterTest, InvalidOptions) {
  SquashfsOptions options;
  options.block_size = 100000;
  EXPECT_THROW(SquashfsWriter(image_, options), Error);
  options = {};
  options.level = 23;
  try {
    SquashfsWriter w(image_, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
  }
  try {
    SquashfsWriter w(tmp_ / "missing/image", {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_found) << e.describe();
  }
}

TEST(SquashfsParseCompression, NamesAndErrors) {
  EXPECT_EQ(parse_compression("zstd"), SquashfsCompression::zstd);
  EXPECT_EQ(parse_compression("lz4"), SquashfsCompression::lz4);
  EXPECT_EQ(parse_compression("gzip"), SquashfsCompression::gzip);
  EXPECT_EQ(parse_compression("xz"), SquashfsCompression::xz);
  EXPECT_EQ(parse_compression("none"), SquashfsCompression::none);
  try {
    parse_compression("lzo");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(e.describe().find("zstd, lz4, gzip, xz or none"), std::string::npos);
  }
}

}  // namespace
}  // namespace deepops
