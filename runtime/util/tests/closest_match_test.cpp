#include "util/closest_match.hpp"

#include <gtest/gtest.h>

namespace deepops {
namespace {

const std::vector<std::string> kCommands = {"import", "list",   "remove", "gc",    "check",
                                            "start",  "create", "exec",   "export"};

TEST(EditDistance, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("start", "start"), 0u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("lst", "list"), 1u);
  EXPECT_EQ(edit_distance("imports", "import"), 1u);
}

TEST(EditDistance, AnAdjacentSwapIsOneEdit) {
  EXPECT_EQ(edit_distance("strat", "start"), 1u);
  EXPECT_EQ(edit_distance("exprot", "export"), 1u);
  EXPECT_EQ(edit_distance("ab", "ba"), 1u);
  // Optimal string alignment: a swapped pair is not edited again.
  EXPECT_EQ(edit_distance("ca", "abc"), 3u);
}

TEST(ClosestMatch, NamesTheCommandMeant) {
  EXPECT_EQ(closest_match("strat", kCommands), "start");
  EXPECT_EQ(closest_match("lsit", kCommands), "list");
  EXPECT_EQ(closest_match("imprt", kCommands), "import");
  EXPECT_EQ(closest_match("exprot", kCommands), "export");
  EXPECT_EQ(closest_match("gx", kCommands), "gc");
  EXPECT_EQ(closest_match("chekc", kCommands), "check");
}

TEST(ClosestMatch, IgnoresAsciiCase) {
  EXPECT_EQ(closest_match("START", kCommands), "start");
  EXPECT_EQ(closest_match("Lsit", kCommands), "list");
}

TEST(ClosestMatch, NothingWhenNothingIsNear) {
  EXPECT_EQ(closest_match("frobnicate", kCommands), std::nullopt);
  EXPECT_EQ(closest_match("help", kCommands), std::nullopt);
  EXPECT_EQ(closest_match("st", kCommands), std::nullopt);   // 3 edits from start
  EXPECT_EQ(closest_match("imp", kCommands), std::nullopt);  // 3 edits in 6 letters
  EXPECT_EQ(closest_match("", kCommands), std::nullopt);
  EXPECT_EQ(closest_match("start", {}), std::nullopt);
}

TEST(ClosestMatch, TheThresholdGrowsWithTheLength) {
  // Two edits in six letters, not three; one in five, not two.
  EXPECT_EQ(closest_match("impxxt", {"import"}), "import");
  EXPECT_EQ(closest_match("ipmrot", {"import"}), "import");  // two swaps
  EXPECT_EQ(closest_match("ixxxrt", {"import"}), std::nullopt);
  EXPECT_EQ(closest_match("stxrt", {"start"}), "start");
  EXPECT_EQ(closest_match("stxxt", {"start"}), std::nullopt);
}

TEST(ClosestMatch, PrefersTheNearestThenTheFirst) {
  EXPECT_EQ(closest_match("abcd", {"abxx", "abcx"}), "abcx");
  EXPECT_EQ(closest_match("abx", {"abc", "abd"}), "abc");
  EXPECT_EQ(closest_match("abx", {"abd", "abc"}), "abd");
}

}  // namespace
}  // namespace deepops
