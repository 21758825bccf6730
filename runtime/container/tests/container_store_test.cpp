// Named containers: which keeper a store reports, and when.
#include "container/container_store.hpp"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

class ContainerStoreTest : public ::testing::Test {
 protected:
  fs::path root =
      fs::temp_directory_path() / ("store-test-" + std::to_string(getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override {
    fs::remove_all(root);
    fs::create_directories(root);
    std::ofstream(root / "image.sqsh") << "not really squashfs";
  }
  void TearDown() override { fs::remove_all(root); }
  NamedContainer make(ContainerStore& store) {
    return store.create("dev", root / "image.sqsh", "example/image", ImageConfig{});
  }
};

TEST_F(ContainerStoreTest, AKeeperIsReportedOnlyWhileItHoldsTheLock) {
  ContainerStore store(root / "data");
  NamedContainer c = make(store);
  EXPECT_FALSE(store.find("dev")->keeper);
  {
    auto lock = store.lock_for_run(c);
    lock.publish_keeper(4242, true);
    auto running = store.find("dev");
    ASSERT_TRUE(running->keeper);
    EXPECT_EQ(*running->keeper, 4242);
    EXPECT_TRUE(running->remap_root);
    EXPECT_FALSE(running->running_elsewhere);
    EXPECT_THROW(store.lock_for_run(c), Error);  // one keeper at a time
  }
  EXPECT_FALSE(store.find("dev")->keeper);  // the lock went with it
}

TEST_F(ContainerStoreTest, AKeeperOfAnotherMachineIsNotAPidHere) {
  ContainerStore store(root / "data");
  NamedContainer c = make(store);
  auto lock = store.lock_for_run(c);
  lock.publish_keeper(4242, false);
  // What a node sharing the data folder would have written.
  std::ofstream(c.dir / "keeper.json")
      << nlohmann::json{{"pid", 4242}, {"remap_root", false}, {"boot_id", "another-boot"}}.dump();
  auto seen = store.find("dev");
  EXPECT_FALSE(seen->keeper);
  EXPECT_TRUE(seen->running_elsewhere);
}

// ENOSPC names neither bytes nor inodes: the hint asks the file system. (The
// inodes case needs a file system out of them: runtime.resources and
// import.faults mount one.)
TEST(ExhaustedResource, SpaceWhereInodesAreLeftAndForPathsNotMadeYet) {
  fs::path dir = fs::temp_directory_path();
  EXPECT_EQ(exhausted_resource(dir), "space");
  EXPECT_EQ(exhausted_resource(dir / "not" / "made" / "yet"), "space");
}

}  // namespace
}  // namespace deepops

namespace deepops {
namespace {

// A writable layer as overlayfs leaves it: work/work with mode 000, which a
// plain remove_all cannot enter as its owner. Run as that owner (nobody, when
// the test runs as root, whom no mode stops).
TEST(RemoveTree, RemovesALayerWithOverlaysMode000WorkFolder) {
  const fs::path layer = fs::temp_directory_path() / ("remove-tree-" + std::to_string(getpid()));
  fs::create_directories(layer / "upper/etc");
  fs::create_directories(layer / "work/work/inner");
  std::ofstream(layer / "upper/etc/file") << "x";
  std::ofstream(layer / "work/work/inner/f") << "x";
  const uid_t owner = geteuid() == 0 ? 65534 : geteuid();
  for (const auto& e : fs::recursive_directory_iterator(layer)) {
    ASSERT_EQ(lchown(e.path().c_str(), owner, owner), 0);
  }
  ASSERT_EQ(lchown(layer.c_str(), owner, owner), 0);
  fs::permissions(layer / "work/work/inner", fs::perms::none);
  fs::permissions(layer / "work/work", fs::perms::none);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && (setresgid(owner, owner, owner) != 0 || setgroups(0, nullptr) != 0 ||
                           setresuid(owner, owner, owner) != 0)) {
      _exit(3);
    }
    try {
      remove_tree(layer);
      remove_tree(layer);  // gone already: nothing to do
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(fs::exists(layer));
  std::error_code ec;
  if (fs::exists(layer)) {
    for (const auto& p : {layer / "work/work", layer / "work/work/inner"}) {
      fs::permissions(p, fs::perms::owner_all, ec);
    }
    fs::remove_all(layer, ec);
  }
}

}  // namespace
}  // namespace deepops
