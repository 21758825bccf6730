// Streaming sha256.
#include "util/digest.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

namespace deepops {
namespace {

TEST(Digest, Sha256OfKnownInput) {
  EXPECT_EQ(sha256_digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(is_sha256_digest(sha256_digest("")));
  EXPECT_FALSE(is_sha256_digest("sha256:../../etc/passwd"));
  EXPECT_FALSE(is_sha256_digest("sha256:" + std::string(64, 'A')));
}

}  // namespace
}  // namespace deepops
