// One grammar for sizes, booleans and host lists, whoever reads them.
#include "config/values.hpp"

#include <gtest/gtest.h>

#include "error_matchers.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

const std::optional<Errc> kErrorCode = Errc::invalid_argument;

TEST(ParseSize, SuffixesArePowersOf1024) {
  EXPECT_EQ(parse_size("0", "x"), 0u);
  EXPECT_EQ(parse_size("123", "x"), 123u);
  EXPECT_EQ(parse_size("4k", "x"), 4096u);
  EXPECT_EQ(parse_size("2G", "x"), uint64_t{2} << 30);
  EXPECT_EQ(parse_size("3GB", "x"), uint64_t{3} << 30);
  EXPECT_EQ(parse_size("1TiB", "x"), uint64_t{1} << 40);
  EXPECT_EQ(parse_size("1P", "x"), uint64_t{1} << 50);
  EXPECT_EQ(parse_size("10 kb", "x"), 10240u);
}

TEST(ParseSize, FractionsTakeASuffix) {
  EXPECT_EQ(parse_size("1.5T", "x"), uint64_t{3} << 39);
  EXPECT_EQ(parse_size("0.5k", "x"), 512u);
  EXPECT_EQ(parse_size("2.25G", "x"), (uint64_t{9} << 30) / 4);
}

TEST(ParseSize, RefusesAnythingElseNamingWhereItCameFrom) {
  for (const char* bad : {"", "G", "-1", "1.5", "1.", ".5G", "12X", "1..5G", "1.5.2G",
                          "99999999999999999999", "16777216T", "1e3"}) {
    SCOPED_TRACE(bad);
    EXPECT_ERROR_MENTIONS(parse_size(bad, "conf:3: IMPORT_MAX_SIZE"), "conf:3: IMPORT_MAX_SIZE",
                          "is not a size");
  }
}

TEST(ParseBool, AcceptsTheUsualSpellings) {
  for (const char* yes : {"1", "yes", "y", "true", "on", "YES", "True", "On", "Y"})
    EXPECT_TRUE(parse_bool(yes, "x")) << yes;
  for (const char* no : {"0", "no", "n", "false", "off", "", "NO", "False", "OFF", "N"})
    EXPECT_FALSE(parse_bool(no, "x")) << no;
}

TEST(ParseBool, RefusesAnythingElseNamingTheSetting) {
  for (const char* bad : {"2", "yes ", " yes", "enable", "t", "f", "-1", "10", "nope", "o"}) {
    EXPECT_ERROR_MENTIONS(parse_bool(bad, "conf:3: MOUNT_HOME"), "conf:3: MOUNT_HOME",
                          "'" + std::string(bad) + "'");
  }
}

TEST(ParseSeconds, WholeSecondsWithAnOptionalUnit) {
  EXPECT_EQ(parse_seconds("0", "x", 100), 0u);
  EXPECT_EQ(parse_seconds("30", "x", 100), 30u);
  EXPECT_EQ(parse_seconds(" 30s ", "x", 100), 30u);
  EXPECT_EQ(parse_seconds("1m", "x", 100), 60u);
  EXPECT_EQ(parse_seconds("1H", "x", 86400), 3600u);
}

TEST(ParseSeconds, RefusesAnythingElseAndTooLong) {
  for (const char* bad : {"", "s", "-1", "1.5", "2d", "1 h x", "9999999999", "101", "2m"}) {
    SCOPED_TRACE(bad);
    EXPECT_ERROR_MENTIONS(parse_seconds(bad, "conf:3: IMAGE_MOUNT_LINGER", 100),
                          "conf:3: IMAGE_MOUNT_LINGER", "from 0 to 100 seconds");
  }
}

TEST(ParseHostList, IsABooleanOrHosts) {
  using Hosts = std::vector<std::string>;
  EXPECT_EQ(parse_host_list("1", "x"), Hosts{"*"});
  EXPECT_EQ(parse_host_list("Yes", "x"), Hosts{"*"});
  EXPECT_EQ(parse_host_list("no", "x"), Hosts{});
  EXPECT_EQ(parse_host_list("", "x"), Hosts{});
  EXPECT_EQ(parse_host_list("a:5000, b c,,*", "x"), (Hosts{"a:5000", "b", "c", "*"}));
  EXPECT_ERROR_MENTIONS(parse_host_list("http://a:5000", "--allow-http"), "--allow-http",
                        "not a registry host");
  EXPECT_ERROR_MENTIONS(parse_host_list("a/b", "x"), "'a/b'");
}

}  // namespace
}  // namespace deepops
