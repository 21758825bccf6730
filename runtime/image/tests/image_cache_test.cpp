#include "image/image_cache.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

std::string digest(char c) { return "sha256:" + std::string(64, c); }

class ImageCacheTest : public ::testing::Test {
 protected:
  fs::path root = fs::temp_directory_path() / ("cache-test-" + std::to_string(getpid()));
  ImageCache cache{root};
  void TearDown() override { fs::remove_all(root); }

  CachedImage add(char c, size_t bytes, const std::string& ref) {
    fs::path scratch = cache.make_scratch(digest(c));
    std::ofstream(scratch / "image.sqsh") << std::string(bytes, 'x');
    CachedImage meta;
    meta.manifest_digest = digest(c);
    meta.references = {ref};
    auto published = cache.publish(scratch / "image.sqsh", meta);
    fs::remove_all(scratch);
    return published;
  }
  void age(char c, int seconds_ago) {
    fs::last_write_time(root / "images" / (std::string(64, c) + ".json"),
                        fs::file_time_type::clock::now() - std::chrono::seconds(seconds_ago));
  }
};

TEST_F(ImageCacheTest, PublishedEntriesAreFoundAndListed) {
  add('a', 100, "reg/a:1");
  auto found = cache.find(digest('a'));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->size, 100);
  EXPECT_EQ(found->references, std::vector<std::string>{"reg/a:1"});
  cache.add_reference(digest('a'), "reg/a:latest");
  EXPECT_EQ(cache.find(digest('a'))->references.size(), 2u);
  EXPECT_EQ(cache.list().size(), 1u);
}

TEST_F(ImageCacheTest, AnImageWithoutSidecarOrWithTheWrongSizeIsNoEntry) {
  add('a', 100, "a");
  add('b', 100, "b");
  fs::remove(root / "images" / (std::string(64, 'a') + ".json"));  // killed before the commit point
  std::ofstream(root / "images" / (std::string(64, 'b') + ".sqsh")) << "x";  // damaged after it
  EXPECT_FALSE(cache.find(digest('a')));
  EXPECT_FALSE(cache.find(digest('b')));
  EXPECT_TRUE(cache.list().empty());
}

TEST_F(ImageCacheTest, GcRemovesLeastRecentlyUsedFirstAndLeftovers) {
  add('a', 1000, "a");
  add('b', 1000, "b");
  add('c', 1000, "c");
  age('a', 30);
  age('b', 60);  // least recently used
  age('c', 10);
  cache.touch(digest('a'));  // used just now
  fs::create_directories(root / "tmp" / (std::string(64, 'd') + ".4242"));
  auto r = cache.gc(2000);
  EXPECT_EQ(r.images_removed, 1);
  EXPECT_EQ(r.leftovers_removed, 1);
  EXPECT_FALSE(cache.find(digest('b')));
  EXPECT_TRUE(cache.find(digest('a')));
  EXPECT_TRUE(cache.find(digest('c')));
  EXPECT_EQ(r.bytes_kept, 2000);
}

TEST_F(ImageCacheTest, GcSkipsWhatARunningImportHolds) {
  add('a', 1000, "a");
  fs::path scratch = cache.make_scratch(digest('e'));
  {
    ImageCache::Lock busy_a = cache.lock(digest('a'));
    ImageCache::Lock busy_e = cache.lock(digest('e'));
    auto r = cache.gc(0);
    EXPECT_EQ(r.images_removed, 0);
    EXPECT_EQ(r.leftovers_removed, 0);
    EXPECT_TRUE(fs::exists(scratch));
  }
  auto r = cache.gc(0);
  EXPECT_EQ(r.images_removed, 1);
  EXPECT_EQ(r.leftovers_removed, 1);
}

TEST_F(ImageCacheTest, LockIsExclusiveAcrossHolders) {
  auto first = cache.try_lock(digest('a'));
  ASSERT_TRUE(first);
  EXPECT_FALSE(cache.try_lock(digest('a')));  // flock: a second open file description
  EXPECT_TRUE(cache.try_lock(digest('b')));
}

TEST_F(ImageCacheTest, RejectsDigestsThatAreNotSafeFileNames) {
  EXPECT_THROW(cache.find("sha256:../../etc/passwd"), Error);
  EXPECT_THROW(cache.lock("md5:abc"), Error);
}

}  // namespace
}  // namespace deepops
