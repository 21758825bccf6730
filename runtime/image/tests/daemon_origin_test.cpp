// dockerd:// and podman:// through fake clients: scripts in a temporary
// folder standing in for `docker` and `podman`, for the error paths and the
// stream itself. The real Podman is tests/integration/import_daemon_test.sh.
#include "image/daemon_origin.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "error_matchers.hpp"
#include "image/archive_origin.hpp"
#include "util/digest.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;
using testing::error_of;

size_t open_fds() {
  return static_cast<size_t>(std::distance(fs::directory_iterator("/proc/self/fd"), {}));
}

class DaemonOriginTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("daemon-origin-" + std::to_string(getpid()));
  fs::path bin = dir / "bin";
  fs::path scratch = dir / "scratch";
  fs::path archive = dir / "image.tar";
  size_t fds_before = 0;

  void SetUp() override {
    fs::create_directories(bin);
    fs::create_directories(dir / "empty");
    make_docker_archive();
    fds_before = open_fds();
  }
  void TearDown() override {
    // Nothing left behind: no descriptor, no child (reaped), no scratch.
    EXPECT_EQ(open_fds(), fds_before);
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
    EXPECT_TRUE(!fs::exists(scratch) || fs::is_empty(scratch));
    fs::remove_all(dir);
  }

  // `docker save`'s layout: manifest.json, a config, one layer tar.
  void make_docker_archive() {
    fs::path src = dir / "src";
    fs::create_directories(src / "rootfs");
    std::ofstream(src / "rootfs" / "hello.txt") << "hello from the daemon\n";
    ASSERT_EQ(std::system(("tar -cf " + (src / "layer.tar").string() + " -C " +
                           (src / "rootfs").string() + " hello.txt")
                              .c_str()),
              0);
    std::ifstream layer(src / "layer.tar", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(layer)), {});
    std::ofstream(src / "config.json")
        << R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},)"
        << R"("rootfs":{"type":"layers","diff_ids":[")" << sha256_digest(bytes) << R"("]}})";
    std::ofstream(src / "manifest.json")
        << R"([{"Config":"config.json","RepoTags":["localhost/app:1"],"Layers":["layer.tar"]}])";
    ASSERT_EQ(std::system(("tar -cf " + archive.string() + " -C " + src.string() +
                           " manifest.json config.json layer.tar")
                              .c_str()),
              0);
  }

  // A fake client: `body` runs as /bin/sh with the client's arguments.
  void fake(const std::string& name, const std::string& body) {
    fs::path p = bin / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(p, fs::perms::owner_all);
  }

  std::unique_ptr<ImageOrigin> open(DaemonClient client, const std::string& image) {
    return daemon_origin(client, image, "/nonexistent:" + bin.string(), scratch);
  }
};

TEST_F(DaemonOriginTest, AClientMissingFromPathSaysItIsNotInstalled) {
  std::string msg = error_of(
      [&] { daemon_origin(DaemonClient::docker, "busybox:1", (dir / "empty").string(), scratch); },
      Errc::not_found);
  EXPECT_NE(msg.find("docker is not installed here (no `docker` in PATH)"), std::string::npos);
  msg = error_of([&] { daemon_origin(DaemonClient::podman, "busybox:1", "", scratch); },
                 Errc::not_found);
  EXPECT_NE(msg.find("podman is not installed here"), std::string::npos);
}

TEST_F(DaemonOriginTest, AClientInTheCurrentFolderOrARelativePathIsNotTaken) {
  fake("docker", "exit 0");
  EXPECT_NE(error_of([&] {
              daemon_origin(DaemonClient::docker, "a:1", "bin", scratch);
            }).find("not installed"),
            std::string::npos);
}

TEST_F(DaemonOriginTest, ADaemonThatCannotBeReachedIsShownInTheClientsWords) {
  fake("docker",
       "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
       "daemon running?' >&2; exit 1");
  std::string msg = error_of([&] { open(DaemonClient::docker, "busybox:1"); }, Errc::network);
  EXPECT_NE(msg.find("dockerd://busybox:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Cannot connect to the Docker daemon at unix:///var/run/docker.sock"),
            std::string::npos)
      << msg;
}

TEST_F(DaemonOriginTest, ASocketRefusingUsIsPermissionDenied) {
  fake("docker",
       "echo 'permission denied while trying to connect to the Docker daemon socket at "
       "unix:///var/run/docker.sock' >&2; exit 1");
  error_of([&] { open(DaemonClient::docker, "busybox:1"); }, Errc::permission_denied);
}

TEST_F(DaemonOriginTest, AnImageNotThereIsNotFoundWithAPullHint) {
  fake("podman", "echo 'Error: nosuchimage:1: image not known' >&2; exit 125");
  try {
    open(DaemonClient::podman, "nosuchimage:1");
    ADD_FAILURE() << "did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_found);
    EXPECT_NE(std::string(e.what()).find("podman://nosuchimage:1"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("image not known"), std::string::npos);
    EXPECT_NE(e.hint().find("podman pull nosuchimage:1"), std::string::npos) << e.hint();
  }
}

TEST_F(DaemonOriginTest, TheSavedArchiveIsStreamedAndDigestedAsTheSameFileWouldBe) {
  // Only the documented arguments: anything else fails the fake.
  fake("podman",
       "[ \"$*\" = 'save --format docker-archive localhost/app:1' ] || exit 3\n"
       "cat '" +
           archive.string() + "'");
  Platform any;
  std::string streamed =
      open(DaemonClient::podman, "localhost/app:1")->resolve(any).manifest_digest;
  std::string from_file = archive_origin(true, archive, "", scratch)->resolve(any).manifest_digest;
  EXPECT_EQ(streamed, from_file);  // a changed image gives a new digest, as a changed file does
  fake("docker", "[ \"$*\" = 'save busybox:1' ] || exit 3\ncat '" + archive.string() + "'");
  auto origin = open(DaemonClient::docker, "busybox:1");
  EXPECT_EQ(origin->reference(), "dockerd://busybox:1");
  EXPECT_EQ(origin->resolve(any).manifest_digest, from_file);
}

TEST_F(DaemonOriginTest, MuchOnStderrNeitherBlocksTheClientNorIsKeptWhole) {
  fake("docker", "head -c 300000 /dev/zero | tr '\\0' x >&2; cat '" + archive.string() +
                     "'; echo 'Error: the last words' >&2; exit 1");
  std::string msg = error_of([&] { open(DaemonClient::docker, "a:1"); });
  EXPECT_NE(msg.find("the last words"), std::string::npos);
  EXPECT_LT(msg.size(), 2000u);
}

TEST_F(DaemonOriginTest, ANonZeroExitFailsEvenAfterACompleteArchive) {
  fake("docker", "cat '" + archive.string() + "'; exit 1");
  std::string msg = error_of([&] { open(DaemonClient::docker, "a:1"); });
  EXPECT_NE(msg.find("exited with 1"), std::string::npos) << msg;
}

TEST_F(DaemonOriginTest, GarbageFromASuccessfulClientIsACorruptArchive) {
  fake("docker", "echo 'this is no tar'; exit 0");
  error_of([&] { open(DaemonClient::docker, "a:1"); }, Errc::corrupt);
}

TEST_F(DaemonOriginTest, AClientStillWritingAfterABadArchiveIsStoppedAndReaped) {
  // Not a tar, then output without end: the unpack fails, the pipe closes,
  // and the client dies of SIGPIPE (or is killed); the error is the unpack's.
  fake("docker", "echo 'this is no tar'; exec cat /dev/zero");
  error_of([&] { open(DaemonClient::docker, "a:1"); }, Errc::corrupt);
}

}  // namespace
}  // namespace deepops
