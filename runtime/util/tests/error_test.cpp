// Typed errors: what they say, and how they say it.
#include "util/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>

namespace deepops {
namespace {

TEST(Error, DescribeAppendsHint) {
  Error with_hint(Errc::auth, "401 from nvcr.io", "check ~/.config/enroot/.credentials");
  EXPECT_EQ(with_hint.describe(), "401 from nvcr.io (check ~/.config/enroot/.credentials)");
  Error without(Errc::network, "connection refused");
  EXPECT_EQ(without.describe(), "connection refused");
  EXPECT_STREQ(to_string(Errc::no_space), "no space left");
}

TEST(Error, SysErrorNamesTheCallAndTheReasonAndClassifies) {
  const Error full = sys_error("cannot write /x", ENOSPC, "free space");
  EXPECT_EQ(full.code(), Errc::no_space);
  EXPECT_NE(std::string(full.what()).find("cannot write /x"), std::string::npos) << full.what();
  EXPECT_NE(std::string(full.what()).find("No space left on device"), std::string::npos)
      << full.what();
  EXPECT_EQ(full.hint(), "free space");
  EXPECT_EQ(sys_error("open /y", ENOENT).code(), Errc::not_found);
  EXPECT_EQ(sys_error("open /y", EACCES).code(), Errc::permission_denied);
}

}  // namespace
}  // namespace deepops
