#include "image/archive_origin.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

class ArchiveOriginTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("archive-origin-" + std::to_string(getpid()));
  fs::path scratch = dir / "scratch";
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }
  // A tar holding one entry with a chosen (possibly hostile) name.
  fs::path tar_with(const std::string& name) {
    fs::path tar = dir / "t.tar";
    std::string cmd =
        "python3 -c \"import io,tarfile,sys; t=tarfile.open(sys.argv[1],'w'); "
        "i=tarfile.TarInfo(sys.argv[2]); d=b'x'; i.size=len(d); t.addfile(i, io.BytesIO(d)); "
        "t.close()\" " +
        tar.string() + " '" + name + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return tar;
  }
  Errc code_of(bool docker, const fs::path& file) {
    try {
      archive_origin(docker, file, "", scratch);
    } catch (const Error& e) {
      return e.code();
    }
    return Errc::internal;
  }
};

TEST_F(ArchiveOriginTest, AnEntryLeavingTheFolderIsRejectedAndNothingLands) {
  fs::path tar = tar_with("../../escaped");
  EXPECT_EQ(code_of(false, tar), Errc::corrupt);
  EXPECT_FALSE(fs::exists(dir / "escaped"));
  EXPECT_FALSE(fs::exists(scratch / "escaped"));
  EXPECT_TRUE(!fs::exists(scratch) || fs::is_empty(scratch));  // the unpack folder went too
}

TEST_F(ArchiveOriginTest, NotATarOrNotAnImageSaysSo) {
  std::ofstream(dir / "junk") << "not a tar";
  EXPECT_EQ(code_of(false, dir / "junk"), Errc::not_found);
  EXPECT_EQ(code_of(true, tar_with("hello.txt")), Errc::corrupt);     // no manifest.json
  EXPECT_EQ(code_of(false, tar_with("hello.txt")), Errc::not_found);  // no oci-layout
}

}  // namespace
}  // namespace deepops
