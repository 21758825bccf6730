#include "container/squashfs_mount.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "container/shared_image.hpp"
#include "image/squashfs_writer.hpp"
#include "test_folder.hpp"
#include "util/digest.hpp"

namespace deepops {
namespace {

namespace fs = std::filesystem;

constexpr int kNoNamespaces = 77;

std::string random_bytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xFF);
  return out;
}

// Compressible, as source code and text are.
std::string text_bytes(size_t size, uint64_t seed) {
  std::string out;
  for (uint64_t i = 0; out.size() < size; ++i) {
    out += "def f_" + std::to_string(seed) + "_" + std::to_string(i) + "(x): return x\n";
  }
  out.resize(size);
  return out;
}

// An image shaped like a Python installation: many small files (in the
// image's fragments), some compressible, in nested folders, and a few large
// ones (full blocks, a tail in a fragment, a run of zeros). Returns each
// file's sha256, keyed by its path in the image.
std::map<std::string, std::string> write_image(const fs::path& image) {
  SquashfsWriter writer(image, {});
  auto root = std::make_unique<Node>();
  root->mode = 0755;
  std::map<std::string, std::string> digests;
  auto add_file = [&](Node& parent, const std::string& path, const std::string& data) {
    auto node = std::make_unique<Node>();
    node->type = NodeType::regular;
    node->mode = 0644;
    node->content = writer.begin_file();
    writer.append(data.data(), data.size());
    writer.end_file();
    parent.children[fs::path(path).filename().string()] = std::move(node);
    digests[path] = sha256_digest(data);
  };
  for (int d = 0; d < 12; ++d) {
    auto folder = std::make_unique<Node>();
    folder->mode = 0755;
    const std::string dir = "/pkg" + std::to_string(d);
    for (int f = 0; f < 60; ++f) {
      const uint64_t seed = static_cast<uint64_t>(d * 1000 + f);
      const size_t size = (seed * 7919) % 24000;
      add_file(*folder, dir + "/m" + std::to_string(f) + ".py",
               f % 2 ? text_bytes(size, seed) : random_bytes(size, seed));
    }
    root->children["pkg" + std::to_string(d)] = std::move(folder);
  }
  add_file(*root, "/libbig.so", random_bytes(3 * 1024 * 1024 + 4321, 1));
  add_file(*root, "/libtext.so", text_bytes(2 * 1024 * 1024 + 17, 2));
  add_file(*root, "/zeros", std::string(1024 * 1024 + 5, '\0'));
  add_file(*root, "/empty", "");
  writer.finish(*root);
  return digests;
}

std::string file_digest(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  Sha256 hash;
  std::vector<char> buffer(64 * 1024 + 3);  // not a multiple of a block
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    hash.update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  return in.bad() ? "unreadable" : hash.finish();
}

// A user and mount namespace of the calling process, mapping root to its
// ids, with a private "/": as a container's keeper has them.
bool enter_namespaces() {
  const uid_t uid = ::getuid();
  const gid_t gid = ::getgid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
  std::ofstream("/proc/self/setgroups") << "deny";
  std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
  std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
  return ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

// In a forked child, a user and mount namespace as the tests' processes get
// them; runs `body` and exits with its result. The parent's result: the
// child's exit status, or kNoNamespaces.
template <typename Body>
int in_namespaces(Body body) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!enter_namespaces()) ::_exit(kNoNamespaces);
    int rc = 1;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      rc = 2;
    }
    ::_exit(rc);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class SquashfsMountTest : public test::FolderTest {
 protected:
  void SetUp() override {
    test::FolderTest::SetUp();
    image = root / "image.sqsh";
    mountpoint = root / "mnt";
    fs::create_directory(mountpoint);
    digests = write_image(image);
  }
  fs::path image, mountpoint;
  std::map<std::string, std::string> digests;
};

// 2 x nproc readers at once, each reading every file in its own order,
// against one mount and its servers: every byte must be the image's. The
// servers answer an open and the reads of the same file in different
// processes, so a handle that carried state between requests would fail here.
TEST_F(SquashfsMountTest, ParallelReadersReadEveryFileIntact) {
  const unsigned readers = 2 * std::max(1U, std::thread::hardware_concurrency());
  int rc = in_namespaces([&] {
    SquashfsMount mount(image, mountpoint);
    if (mount.server_pids().size() != squashfs_server_count()) return 3;
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (unsigned r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        std::vector<std::pair<std::string, std::string>> order(digests.begin(), digests.end());
        std::shuffle(order.begin(), order.end(), std::mt19937(r));
        for (const auto& [path, digest] : order) {
          if (file_digest(mountpoint.string() + path) != digest) {
            std::fprintf(stderr, "reader %u: %s differs\n", r, path.c_str());
            ++wrong;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    return wrong.load() == 0 ? 0 : 4;
  });
  if (rc == kNoNamespaces) GTEST_SKIP() << "no unprivileged user namespaces";
  EXPECT_EQ(rc, 0) << "3: wrong number of servers; 4: a file read back differs";
}

// What the servers answer besides reads: listings, attributes, misses, and
// the refusal of writes, each from whichever server the kernel picks.
TEST_F(SquashfsMountTest, ListsStatsAndRefusesWrites) {
  int rc = in_namespaces([&] {
    SquashfsMount mount(image, mountpoint);
    size_t listed = 0;
    for (const auto& entry : fs::recursive_directory_iterator(mountpoint)) {
      if (entry.is_regular_file()) ++listed;
    }
    if (listed != digests.size()) return 3;
    struct stat st {};
    if (::stat((mountpoint / "libbig.so").c_str(), &st) != 0) return 4;
    if (st.st_size != 3 * 1024 * 1024 + 4321 || st.st_uid != 0) return 5;
    if (::access((mountpoint / "pkg0/missing.py").c_str(), F_OK) == 0 || errno != ENOENT) return 6;
    std::ofstream out(mountpoint / "pkg0/new.py");
    if (out.is_open()) return 7;
    return 0;
  });
  if (rc == kNoNamespaces) GTEST_SKIP() << "no unprivileged user namespaces";
  EXPECT_EQ(rc, 0) << "3: listing; 4/5: stat; 6: a missing name found; 7: a write allowed";
}

// The servers end with the mount: none is left once it is gone.
TEST_F(SquashfsMountTest, ServersEndWithTheMount) {
  int rc = in_namespaces([&] {
    std::vector<pid_t> servers;
    {
      SquashfsMount mount(image, mountpoint);
      servers = mount.server_pids();
      if (file_digest(mountpoint / "zeros") != digests["/zeros"]) return 3;
    }
    for (pid_t pid : servers) {
      if (::kill(pid, 0) == 0) return 4;
    }
    return 0;
  });
  if (rc == kNoNamespaces) GTEST_SKIP() << "no unprivileged user namespaces";
  EXPECT_EQ(rc, 0) << "3: read; 4: a server outlived its mount";
}

// Extended attributes: an image with them shows them; one without says it
// has none (and the kernel stops asking, which is what the test cannot see).
TEST_F(SquashfsMountTest, XattrsShownWhereTheImageHasThem) {
  const fs::path with_xattrs = root / "xattrs.sqsh";
  {
    SquashfsWriter writer(with_xattrs, {});
    Node top;
    top.mode = 0755;
    auto file = std::make_unique<Node>();
    file->type = NodeType::regular;
    file->mode = 0644;
    file->content = writer.begin_file();
    writer.append("data", 4);
    writer.end_file();
    file->xattrs["user.mime_type"] = "text/plain";
    top.children["file"] = std::move(file);
    writer.finish(top);
  }
  int rc = in_namespaces([&] {
    char value[64];
    {
      SquashfsMount mount(with_xattrs, mountpoint);
      ssize_t n = ::getxattr((mountpoint / "file").c_str(), "user.mime_type", value, sizeof value);
      if (n != 10 || std::string(value, 10) != "text/plain") return 3;
    }
    SquashfsMount mount(image, mountpoint);
    for (int i = 0; i < 2; ++i) {
      if (::getxattr((mountpoint / "libbig.so").c_str(), "user.overlay.metacopy", value,
                     sizeof value) >= 0 ||
          (errno != ENODATA && errno != ENOTSUP)) {
        return 4;
      }
    }
    return 0;
  });
  if (rc == kNoNamespaces) GTEST_SKIP() << "no unprivileged user namespaces";
  EXPECT_EQ(rc, 0) << "3: the image's xattr not shown; 4: an xattr where the image has none";
}

// The pid of the image's server, from its socket (SO_PEERCRED); 0: none.
pid_t image_server_pid(const fs::path& image) {
  const std::string name = image_server_name(image);
  int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ucred peer{};
  socklen_t peer_length = sizeof(peer);
  const bool ok = ::connect(sock, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
                  ::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) == 0;
  ::close(sock);
  return ok ? peer.pid : 0;
}

// A container's use of a shared image, in a forked child: the server
// reached before the namespaces, the mount attached in them, a file read.
// Returns 0, or what went wrong (3: no server, 4: not attached, 5: bad data).
int read_through_shared_image(const fs::path& image, const fs::path& runtime,
                              const fs::path& target, const std::string& digest) {
  pid_t pid = ::fork();
  if (pid == 0) {
    auto shared = SharedImage::connect(image, runtime, std::chrono::seconds(1));
    if (!shared) ::_exit(3);
    if (!enter_namespaces()) ::_exit(kNoNamespaces);
    if (!shared->attach(target)) ::_exit(4);
    ::_exit(file_digest(target / "libtext.so") == digest ? 0 : 5);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Two containers in a row share one server, which serves them the same
// data as a mount of their own, and ends a linger time after the last.
TEST_F(SquashfsMountTest, SharedImageServesConsecutiveContainersThenEnds) {
  const fs::path runtime = root / "run";
  fs::create_directory(runtime);
  fs::permissions(runtime, fs::perms::owner_all);
  int first = read_through_shared_image(image, runtime, mountpoint, digests["/libtext.so"]);
  if (first == kNoNamespaces) GTEST_SKIP() << "no unprivileged user namespaces";
  ASSERT_EQ(first, 0) << "3: no server; 4: the mount could not be attached; 5: wrong data";
  const pid_t server = image_server_pid(image);
  ASSERT_GT(server, 0) << "no server listens after the first container";
  EXPECT_EQ(read_through_shared_image(image, runtime, mountpoint, digests["/libtext.so"]), 0);
  EXPECT_EQ(image_server_pid(image), server) << "the second container started another server";
  // Watched by its pid only: a connection would count as a container.
  bool ended = false;
  for (int i = 0; i < 200 && !ended; ++i) {  // 1 s of linger, 20 s at most
    ended = ::kill(server, 0) != 0;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(ended) << "the server outlived its linger time";
  EXPECT_EQ(image_server_pid(image), 0) << "a server still listens";
}

TEST(SharedImageName, FollowsTheImageFile) {
  test::TestFolder folder("SharedImageName");
  const fs::path a = folder.path() / "a.sqsh";
  std::ofstream(a) << "one";
  const std::string before = image_server_name(a);
  EXPECT_EQ(image_server_name(a), before);
  std::ofstream(folder.path() / "b.sqsh") << "one";
  EXPECT_NE(image_server_name(folder.path() / "b.sqsh"), before);
  fs::remove(a);
  std::ofstream(a) << "a new image in the same place";
  EXPECT_NE(image_server_name(a), before) << "a re-imported image shares the old one's server";
  EXPECT_EQ(image_server_name(folder.path() / "missing.sqsh"), "");
}

TEST(SquashfsServerCount, FollowsTheCpusThisProcessMayUse) {
  cpu_set_t saved;
  ASSERT_EQ(::sched_getaffinity(0, sizeof(saved), &saved), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &saved)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(::sched_setaffinity(0, sizeof(one), &one), 0);
  EXPECT_EQ(squashfs_server_count(), 1U);
  ASSERT_EQ(::sched_setaffinity(0, sizeof(saved), &saved), 0);
  const unsigned cpus = static_cast<unsigned>(CPU_COUNT(&saved));
  EXPECT_EQ(squashfs_server_count(), std::min(cpus, kMaxSquashfsServers));
}

}  // namespace
}  // namespace deepops
