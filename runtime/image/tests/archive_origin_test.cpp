#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "image/image_origin.hpp"
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
  Errc code_of(const std::string& source) {
    try {
      offline_origin(source, scratch);
    } catch (const Error& e) {
      return e.code();
    }
    return Errc::internal;
  }
};

TEST_F(ArchiveOriginTest, AnEntryLeavingTheFolderIsRejectedAndNothingLands) {
  fs::path tar = tar_with("../../escaped");
  EXPECT_EQ(code_of("oci-archive:" + tar.string()), Errc::corrupt);
  EXPECT_FALSE(fs::exists(dir / "escaped"));
  EXPECT_FALSE(fs::exists(scratch / "escaped"));
  EXPECT_TRUE(!fs::exists(scratch) || fs::is_empty(scratch));  // the unpack folder went too
}

TEST_F(ArchiveOriginTest, NotATarOrNotAnImageSaysSo) {
  std::ofstream(dir / "junk") << "not a tar";
  EXPECT_EQ(code_of("oci-archive:" + (dir / "junk").string()), Errc::not_found);
  EXPECT_EQ(code_of("docker-archive:" + tar_with("hello.txt").string()),
            Errc::corrupt);  // no manifest.json
  EXPECT_EQ(code_of("oci-archive:" + tar_with("hello.txt").string()),
            Errc::not_found);  // no oci-layout
  EXPECT_EQ(code_of("oci:"), Errc::invalid_argument);
  EXPECT_FALSE(offline_origin("docker.io/library/ubuntu", scratch));
}

}  // namespace
}  // namespace deepops
