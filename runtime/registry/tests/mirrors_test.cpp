// The registry mirrors file.
#include "registry/mirrors.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/error.hpp"

namespace deepops {
namespace {

TEST(Mirrors, ParsesRulesAndNormalisesRegistryNames) {
  MirrorConfig c = MirrorConfig::parse(
      R"({"mirrors":{"docker.io":{"endpoints":["https://m1:5000","http://m2/hub-proxy/"]},
                     "nvcr.io":{"endpoints":["https://cache/nvcr"],"fallback":false}}})",
      "test");
  const MirrorRule* hub = c.rule_for("registry-1.docker.io");
  ASSERT_TRUE(hub);
  ASSERT_EQ(hub->endpoints.size(), 2u);
  EXPECT_EQ(hub->endpoints[0].url(), "https://m1:5000");
  EXPECT_EQ(hub->endpoints[1].prefix, "hub-proxy");
  EXPECT_TRUE(hub->fallback);
  EXPECT_FALSE(c.rule_for("nvcr.io")->fallback);
  EXPECT_FALSE(c.rule_for("ghcr.io"));
  c.add("ghcr.io=https://gh-cache");
  c.add("docker.io=https://first");
  EXPECT_EQ(c.rule_for("registry-1.docker.io")->endpoints[0].host, "first");
  EXPECT_EQ(c.rule_for("ghcr.io")->endpoints.size(), 1u);
}

TEST(Mirrors, BadConfigNamesTheFileAndTheProblem) {
  for (const char* text : {"[]", R"({"mirrors":[]})", R"({"mirrors":{"r":{}}})",
                           R"({"mirrors":{"r":{"endpoints":["ftp://x"]}}})",
                           R"({"mirrors":{"r":{"endpoints":["https://bad host"]}}})",
                           R"({"mirrors":{"r":{"endpoints":["https://x"],"fallback":"no"}}})"}) {
    try {
      MirrorConfig::parse(text, "/etc/deepops/mirrors.json");
      ADD_FAILURE() << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("/etc/deepops/mirrors.json"), std::string::npos)
          << e.what();
    }
  }
  MirrorConfig none;
  EXPECT_THROW(none.add("no-equals-sign"), Error);
  EXPECT_FALSE(MirrorConfig::load("/nonexistent/mirrors.json").rule_for("docker.io"));
}

}  // namespace
}  // namespace deepops
