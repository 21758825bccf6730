// Enroot netrc credentials and Docker config.json.
#include "registry/credentials.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/error.hpp"

namespace deepops {
namespace {

TEST(Netrc, ParsesEnrootCredentialsFile) {
  auto e = parse_netrc(
      "machine nvcr.io login $oauthtoken password $(cat ~/.ngc key)\n"
      "default login x password y\n"
      "machine 127.0.0.1:15001\n  login labuser\n  password s3cret\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].machine, "nvcr.io");
  EXPECT_EQ(e[0].login, "$oauthtoken");
  EXPECT_EQ(e[0].password, "$(cat ~/.ngc key)");
  EXPECT_EQ(e[0].line, 1);
  EXPECT_EQ(e[1].machine, "127.0.0.1:15001");
  EXPECT_EQ(e[1].password, "s3cret");
  EXPECT_EQ(e[1].line, 3);
}

class CredentialLookup : public ::testing::Test {
 protected:
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("creds-" + std::to_string(getpid()));
  CredentialFiles files{dir / ".credentials", dir / "config.json", ""};
  void SetUp() override { std::filesystem::create_directories(dir); }
  void TearDown() override { std::filesystem::remove_all(dir); }
  void write(const std::filesystem::path& p, const std::string& text) { std::ofstream(p) << text; }
};

TEST_F(CredentialLookup, RunsPasswordCommandsAndNamesTheSource) {
  write(files.enroot_netrc, "machine reg.example login me password $(printf 'from-command\\n')\n");
  auto c = lookup_credential(files, "reg.example");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->login, "me");
  EXPECT_EQ(c->password, "from-command");
  EXPECT_NE(c->source.find(".credentials line 1"), std::string::npos) << c->source;
}

TEST_F(CredentialLookup, PrefersTheRequestedUser) {
  write(files.enroot_netrc, "machine r login a password 1\nmachine r login b password 2\n");
  EXPECT_EQ(lookup_credential(files, "r")->password, "1");
  EXPECT_EQ(lookup_credential(files, "r", "b")->password, "2");
  EXPECT_FALSE(lookup_credential(files, "r", "c"));
}

TEST_F(CredentialLookup, FallsBackToDockerConfigWithHubAliases) {
  // base64("hubuser:hubpass")
  write(files.docker_config,
        R"({"auths":{"https://index.docker.io/v1/":{"auth":"aHVidXNlcjpodWJwYXNz"}}})");
  auto c = lookup_credential(files, "registry-1.docker.io");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->login, "hubuser");
  EXPECT_EQ(c->password, "hubpass");
  EXPECT_FALSE(lookup_credential(files, "nvcr.io"));
}

TEST_F(CredentialLookup, FailingPasswordCommandIsAnAuthError) {
  write(files.enroot_netrc, "machine r login a password $(exit 3)\n");
  try {
    lookup_credential(files, "r");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::auth);
  }
}

TEST_F(CredentialLookup, BrokenDockerConfigNamesTheFile) {
  write(files.docker_config, "{not json");
  try {
    lookup_credential(files, "r");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace deepops
