#include "image/layer_stream.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

class LayerStreamTest : public ::testing::Test {
 protected:
  fs::path dir = fs::temp_directory_path() / ("layer-stream-" + std::to_string(getpid()));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }

  // Compressible but not trivial: several MiB, so several chunks flow.
  std::string payload(size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s;
    while (s.size() < size) s += "line " + std::to_string(rng() % 1000) + " of the layer\n";
    s.resize(size);
    return s;
  }
  fs::path write(const std::string& name, const std::string& data) {
    std::ofstream(dir / name, std::ios::binary) << data;
    return dir / name;
  }
  void sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  std::string drain(const fs::path& file, LayerCompression c) {
    LayerStream s(file, c, "test layer");
    std::string out;
    for (auto chunk = s.next(); !chunk.empty(); chunk = s.next()) out += chunk;
    return out;
  }
};

TEST_F(LayerStreamTest, PlainPassesThrough) {
  std::string data = payload(3 << 20, 1);
  EXPECT_EQ(drain(write("plain", data), LayerCompression::none), data);
}

TEST_F(LayerStreamTest, GzipIncludingSeveralMembers) {
  std::string a = payload(5 << 20, 2), b = payload(1 << 20, 3);
  write("a", a);
  write("b", b);
  sh("cd " + dir.string() + " && gzip -c a > one.gz && gzip -c b >> one.gz");
  EXPECT_EQ(drain(dir / "one.gz", LayerCompression::gzip), a + b);
}

TEST_F(LayerStreamTest, ZstdIncludingSeveralFrames) {
  std::string a = payload(4 << 20, 4), b = payload(100, 5);
  write("a", a);
  write("b", b);
  sh("cd " + dir.string() + " && zstd -q -c a > two.zst && zstd -q -c b >> two.zst");
  EXPECT_EQ(drain(dir / "two.zst", LayerCompression::zstd), a + b);
}

TEST_F(LayerStreamTest, TruncatedOrGarbageDataIsCorrupt) {
  write("a", payload(2 << 20, 6));
  sh("cd " + dir.string() + " && gzip -c a > a.gz && zstd -q -c a > a.zst");
  sh("cd " + dir.string() + " && head -c 50000 a.gz > cut.gz && head -c 50000 a.zst > cut.zst");
  for (auto [file, c] :
       {std::pair{"cut.gz", LayerCompression::gzip}, std::pair{"cut.zst", LayerCompression::zstd},
        std::pair{"a", LayerCompression::gzip}, std::pair{"a", LayerCompression::zstd}}) {
    try {
      drain(dir / file, c);
      ADD_FAILURE() << file << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::corrupt) << file << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("test layer"), std::string::npos) << e.what();
    }
  }
}

TEST_F(LayerStreamTest, AbandoningMidwayStopsTheThread) {
  write("big", payload(20 << 20, 7));
  LayerStream s(dir / "big", LayerCompression::none, "test layer");
  EXPECT_FALSE(
      s.next().empty());  // the producer now blocks on a full queue; the destructor must end it
}

}  // namespace
}  // namespace deepops
