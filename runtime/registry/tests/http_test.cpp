// Retry-After, as registries send it.
#include "registry/http.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/error.hpp"

namespace deepops {
namespace {

TEST(RetryAfter, ReadsSeconds) {
  auto now = std::chrono::system_clock::now();
  EXPECT_EQ(parse_retry_after("120", now), std::chrono::seconds(120));
  EXPECT_EQ(parse_retry_after(" 7 ", now), std::chrono::seconds(7));
  EXPECT_EQ(parse_retry_after("0", now), std::chrono::seconds(0));
  // Far too long is kept long (the caller caps it), not dropped.
  EXPECT_EQ(parse_retry_after("3600", now), std::chrono::seconds(3600));
  EXPECT_EQ(parse_retry_after("99999999999999", now), std::chrono::seconds(86400));
}

TEST(RetryAfter, ReadsHttpDates) {
  // RFC 9110's example date is 784111777 seconds after the epoch.
  auto now = std::chrono::system_clock::from_time_t(784111777 - 10);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), std::chrono::seconds(10));
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), std::chrono::seconds(10));
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now), std::chrono::seconds(10));
  // Part of a second still to go counts as a whole one.
  EXPECT_EQ(
      parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + std::chrono::milliseconds(9500)),
      std::chrono::seconds(1));
  // A date gone by: retry now.
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + std::chrono::hours(1)),
            std::chrono::seconds(0));
}

TEST(RetryAfter, RejectsWhatIsNeither) {
  auto now = std::chrono::system_clock::now();
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("   ", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
}

}  // namespace
}  // namespace deepops
