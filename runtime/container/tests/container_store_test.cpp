// Named containers: which keeper a store reports, and when.
#include "container/container_store.hpp"

#include <gtest/gtest.h>
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
