#include "util/strings.hpp"

#include <gtest/gtest.h>

namespace deepops {
namespace {

using Fields = std::vector<std::string>;

TEST(Strings, SplitKeepsEveryField) {
  EXPECT_EQ(split("a,,b", ','), (Fields{"a", "", "b"}));
  EXPECT_EQ(split("", ','), (Fields{""}));
  EXPECT_EQ(split(",", ','), (Fields{"", ""}));
}

TEST(Strings, SplitNonemptyDropsEmptyFieldsOnly) {
  EXPECT_EQ(split_nonempty("/a//b c/", '/'), (Fields{"a", "b c"}));
  EXPECT_TRUE(split_nonempty("", '/').empty());
}

TEST(Strings, SplitListTrimsItems) {
  EXPECT_EQ(split_list(" a, b ,,\tc\n", ','), (Fields{"a", "b", "c"}));
  EXPECT_TRUE(split_list(" , ", ',').empty());
}

TEST(Strings, TrimAndLower) {
  EXPECT_EQ(trim(" \tx y\r\n"), "x y");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(to_lower("YeS-Ünï"), "yes-Ünï");
}

}  // namespace
}  // namespace deepops
