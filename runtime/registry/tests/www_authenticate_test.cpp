// WWW-Authenticate challenges, as registries send them.
#include "registry/www_authenticate.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

namespace deepops {
namespace {

TEST(WwwAuthenticate, ParsesDockerHubBearerChallenge) {
  auto c = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c[0].param("service"), "registry.docker.io");
  EXPECT_EQ(c[0].param("scope"), "repository:library/ubuntu:pull");
}

TEST(WwwAuthenticate, ParsesSeveralChallengesTokensAndEscapes) {
  auto c = parse_www_authenticate(
      R"(Basic realm="lab \"one\"", charset=UTF-8, Bearer realm="https://a/t",service=reg)");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].param("realm"), "lab \"one\"");
  EXPECT_EQ(c[0].param("charset"), "UTF-8");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].param("service"), "reg");
}

TEST(WwwAuthenticate, SurvivesGarbage) {
  for (const char* s :
       {"", ",,,", "=", "Bearer realm=\"unterminated", "\"x\"", "Basic ==,=,a=", "a b c"}) {
    EXPECT_NO_THROW(parse_www_authenticate(s)) << s;
  }
  EXPECT_EQ(parse_www_authenticate("Basic")[0].scheme, "basic");
}

}  // namespace
}  // namespace deepops
