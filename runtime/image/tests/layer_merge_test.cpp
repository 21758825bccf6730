// LayerMerger's defences against hostile layers: limits, names the kernel
// cannot hold, and writes through symlinks. The layers are tars that
// libarchive writes here, read back through the importer's own path.
#include "image/layer_merge.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "image/layer_stream.hpp"
#include "image/squashfs_writer.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

const std::optional<Errc> kErrorCode = Errc::corrupt;

// A tar built entry by entry, written to a file.
class Tar {
 public:
  // Each entry's setup runs at write(): the lambdas own what they use.
  Tar& file(const std::string& path, const std::string& data) {
    return add(
        path, AE_IFREG,
        [n = data.size()](archive_entry* e) {
          archive_entry_set_size(e, static_cast<la_int64_t>(n));
        },
        data);
  }
  Tar& sparse(const std::string& path, int64_t size, const std::string& tail) {
    return add(
        path, AE_IFREG,
        [size, n = static_cast<int64_t>(tail.size())](archive_entry* e) {
          archive_entry_set_size(e, size);
          archive_entry_sparse_add_entry(e, size - n, n);
        },
        tail);
  }
  Tar& dir(const std::string& path) {
    return add(path, AE_IFDIR, [](archive_entry*) {});
  }
  Tar& symlink(const std::string& path, const std::string& target) {
    return add(path, AE_IFLNK,
               [target](archive_entry* e) { archive_entry_set_symlink(e, target.c_str()); });
  }
  Tar& hardlink(const std::string& path, const std::string& target) {
    return add(path, AE_IFREG,
               [target](archive_entry* e) { archive_entry_set_hardlink(e, target.c_str()); });
  }
  fs::path write(const fs::path& file) const {
    std::vector<char> buffer(entries_.size() * 4096 + bytes_ + (1 << 20));
    size_t used = 0;
    archive* a = archive_write_new();
    archive_write_set_format_pax(a);
    archive_write_open_memory(a, buffer.data(), buffer.size(), &used);
    for (const auto& [setup, data] : entries_) {
      archive_entry* e = archive_entry_new();
      setup(e);
      archive_write_header(a, e);
      if (!data.empty()) archive_write_data(a, data.data(), data.size());
      archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    std::ofstream(file, std::ios::binary).write(buffer.data(), static_cast<std::streamsize>(used));
    return file;
  }

 private:
  Tar& add(const std::string& path, unsigned type, const std::function<void(archive_entry*)>& more,
           const std::string& data = {}) {
    entries_.emplace_back(
        [=](archive_entry* e) {
          archive_entry_set_pathname(e, path.c_str());
          archive_entry_set_filetype(e, type);
          archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
          more(e);
        },
        data);
    bytes_ += data.size();
    return *this;
  }
  std::vector<std::pair<std::function<void(archive_entry*)>, std::string>> entries_;
  size_t bytes_ = 0;
};

class LayerMergeTest : public ::testing::Test {
 protected:
  fs::path dir =
      fs::temp_directory_path() / ("layer-merge-test-" + std::to_string(getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }

  // Merges `layers` (top first), throwing like an import, and hands the
  // merger to `inspect`.
  void merge(const std::vector<Tar>& layers, MergeLimits limits = {},
             const std::function<void(const LayerMerger&)>& inspect = {}) {
    SquashfsOptions options;
    options.workers = 1;
    SquashfsWriter writer(dir / "image.sqsh", options);
    LayerMerger merger(writer, OwnerMapping::root, limits);
    for (size_t i = 0; i < layers.size(); ++i) {
      fs::path file = layers[i].write(dir / ("layer" + std::to_string(i) + ".tar"));
      std::string name = "layer " + std::to_string(i + 1);
      merger.merge_layer([&] { return open_layer_tar(file, LayerCompression::none, name); }, name);
    }
    merger.finish();
    writer.finish(merger.root());
    if (inspect) inspect(merger);
  }
};

TEST_F(LayerMergeTest, AnEntryBelowASymlinkOfItsOwnLayerIsRefused) {
  Tar layer = Tar().symlink("etc", "/host/etc").file("etc/cron.d/evil", "x");
  EXPECT_ERROR_MENTIONS(merge({layer}), "layer 1", "'etc/cron.d/evil' lies below '/etc'",
                        "a symlink (to '/host/etc')", "write through the link");
}

TEST_F(LayerMergeTest, AnUpperLayersFileHidesALowerSymlinkInsteadOfFollowingIt) {
  Tar upper = Tar().file("etc/cron.d/job", "upper");
  Tar lower = Tar().symlink("etc", "/host/etc");
  merge({upper, lower}, {}, [](const LayerMerger& m) {
    const Node& root = m.root();
    ASSERT_TRUE(root.children.count("etc"));
    EXPECT_EQ(root.children.at("etc")->type, NodeType::directory);
    EXPECT_TRUE(root.children.at("etc")->children.count("cron.d"));
  });
}

TEST_F(LayerMergeTest, FileBytesOverTheLimitAreRefusedNamingTheSetting) {
  Tar layer = Tar().file("a", std::string(600, 'a')).file("b", std::string(600, 'b'));
  EXPECT_NO_THROW(merge({layer}, {1200, 100}));
  EXPECT_ERROR_MENTIONS(merge({layer}, {1000, 100}), "more than 1000 bytes of file data", "at 'b'");
  try {
    merge({layer}, {1000, 100});
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("IMPORT_MAX_SIZE"), std::string::npos) << e.hint();
  }
}

TEST_F(LayerMergeTest, ASparseFilesHolesCountAgainstTheLimitBeforeAnyIsWritten) {
  Tar layer = Tar().sparse("disk.img", int64_t{1} << 40, std::string(512, 'x'));
  EXPECT_ERROR_MENTIONS(merge({layer}, {uint64_t{1} << 30, 100}), "more than 1 GiB", "'disk.img'");
  Tar small = Tar().sparse("small.img", 1 << 20, std::string(512, 'x'));
  merge({small}, {}, [](const LayerMerger& m) { EXPECT_EQ(m.stats().bytes, uint64_t{1} << 20); });
}

TEST_F(LayerMergeTest, EntriesOverTheLimitAreRefusedAcrossLayers) {
  Tar upper = Tar().file("a", "").file("b", "");
  Tar lower = Tar().file("c", "").file("d", "");
  EXPECT_NO_THROW(merge({upper, lower}, {1 << 20, 4}));
  EXPECT_ERROR_MENTIONS(merge({upper, lower}, {1 << 20, 3}), "layer 2", "more than 3 entries");
}

TEST_F(LayerMergeTest, NamesAndPathsTheKernelCannotHoldAreRefused) {
  EXPECT_ERROR_MENTIONS(merge({Tar().file(std::string(256, 'n'), "")}), "a name of 256 bytes",
                        "over Linux's 255");
  EXPECT_NO_THROW(merge({Tar().file(std::string(255, 'n'), "")}));
  std::string deep;
  for (int i = 0; i < 50; ++i) deep += std::string(99, 'd') + "/";
  EXPECT_ERROR_MENTIONS(merge({Tar().file(deep + "f", "")}), "a path of 5001 bytes");
  EXPECT_ERROR_MENTIONS(merge({Tar().symlink("l", std::string(5000, 't'))}),
                        "a target of 5000 bytes");
}

TEST_F(LayerMergeTest, AWhiteoutOfDotOrDotDotIsRefused) {
  for (const char* name : {"dir/.wh..", "dir/.wh...", "dir/.wh."}) {
    SCOPED_TRACE(name);
    EXPECT_ERROR_MENTIONS(merge({Tar().dir("dir").file(name, ""), Tar().file("dir/x", "")}),
                          "names no entry of its folder");
  }
}

TEST_F(LayerMergeTest, AHardLinkToAFolderIsRefused) {
  EXPECT_ERROR_MENTIONS(merge({Tar().dir("etc").hardlink("link", "etc")}),
                        "hard link 'link' to '/etc', a folder");
}

}  // namespace
}  // namespace deepops
