// Images as the front ends find them: one matching rule for start, create
// and remove; squashfs files read where they are.
#include "usecases/images.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "error_matchers.hpp"
#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

const std::optional<Errc> kErrorCode = std::nullopt;

class FindImageTest : public test::FolderTest {
 protected:
  Settings settings;
  void SetUp() override { settings.cache_path = root / "cache"; }
  CachedImage add(const fs::path& cache_root, const std::string& hex, const std::string& ref) {
    ImageCache cache(cache_root);
    const std::string digest = "sha256:" + hex;
    fs::path scratch = cache.make_scratch(digest);
    std::ofstream(scratch / "image.sqsh") << "squashfs";
    CachedImage meta;
    meta.manifest_digest = digest;
    meta.references = {ref};
    auto published = cache.publish(scratch / "image.sqsh", meta);
    fs::remove_all(scratch);
    return published;
  }
};

const std::string kHexA = "888888" + std::string(58, 'a');
const std::string kHexB = "888888" + std::string(58, 'b');

TEST_F(FindImageTest, ADigestPrefixNeedsSixHexDigitsEverywhere) {
  add(settings.cache_path, kHexA, "registry-1.docker.io/library/ubuntu:22.04");
  const ImageCache cache(settings.cache_path);
  // `remove 8` once removed the only image whose digest starts with 8.
  EXPECT_TRUE(lookup_image(cache, "8").empty());
  EXPECT_TRUE(lookup_image(cache, "88888").empty());
  EXPECT_EQ(lookup_image(cache, "888888").size(), 1u);
  EXPECT_EQ(lookup_image(cache, "sha256:888888").size(), 1u);
  EXPECT_ERROR_MENTIONS(find_image("8", settings, root), "is not in the cache");
  EXPECT_EQ(find_image("888888", settings, root).squashfs,
            settings.cache_path / "images" / (kHexA + ".sqsh"));
}

TEST_F(FindImageTest, AReferenceMatchesInAnySpelling) {
  add(settings.cache_path, kHexA, "registry-1.docker.io/library/ubuntu:22.04");
  const ImageCache cache(settings.cache_path);
  EXPECT_EQ(lookup_image(cache, "ubuntu:22.04").size(), 1u);
  EXPECT_EQ(lookup_image(cache, "docker.io/library/ubuntu:22.04").size(), 1u);
  EXPECT_TRUE(lookup_image(cache, "ubuntu").empty());  // :latest is another image
}

TEST_F(FindImageTest, SeveralMatchesAreRefusedAndSystemCachesComeSecond) {
  add(settings.cache_path, kHexA, "a:1");
  add(settings.cache_path, kHexB, "b:1");
  EXPECT_ERROR_MENTIONS(find_image("888888", settings, root), "matches several images");
  EXPECT_EQ(find_image("888888a", settings, root).squashfs.filename(), kHexA + ".sqsh");
  add(root / "system", std::string(64, 'c'), "registry-1.docker.io/library/c:1");
  EXPECT_ERROR_MENTIONS(find_image("c:1", settings, root), "not in the cache");
  settings.system_caches = {root / "system"};
  EXPECT_EQ(find_image("c:1", settings, root).squashfs.parent_path(), root / "system/images");
}

TEST_F(FindImageTest, FilesAreReadWhereTheyAreAndOfflineImagesAreImportedFirst) {
  fs::create_directories(root / "work");
  std::ofstream(root / "work/x.sqsh") << "squashfs";
  EXPECT_EQ(find_image("./x.sqsh", settings, root / "work").squashfs, root / "work/./x.sqsh");
  EXPECT_ERROR_MENTIONS(find_image("./missing.sqsh", settings, root), "cannot read the image file");
  EXPECT_ERROR_MENTIONS(find_image("x.sqsh", settings, root), "looks like a squashfs file");
  // As Enroot's start: a squashfs name that is a file here is that file.
  EXPECT_EQ(find_image("x.sqsh", settings, root / "work").squashfs, root / "work/x.sqsh");
  EXPECT_ERROR_MENTIONS(find_image("oci-archive:/srv/x.tar", settings, root), "must be imported");
}

}  // namespace
}  // namespace deepops
