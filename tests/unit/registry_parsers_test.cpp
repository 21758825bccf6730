// Parsers of what registries and credential files send us.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "deepops/credentials.hpp"
#include "deepops/digest.hpp"
#include "deepops/error.hpp"
#include "deepops/http.hpp"
#include "deepops/manifest.hpp"
#include "deepops/mirrors.hpp"
#include "deepops/www_authenticate.hpp"

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
  CredentialFiles files{dir / ".credentials", dir / "config.json"};
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

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

TEST(Manifest, ParsesOciManifest) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                     kD1 + R"(","size":10},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":")" +
                     kD2 + R"(","size":20}]})";
  auto m = std::get<ImageManifest>(parse_manifest(body, ""));
  EXPECT_EQ(m.config.digest, kD1);
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].size, 20);
  EXPECT_EQ(layer_compression(m.layers[0].media_type), LayerCompression::zstd);
}

TEST(Manifest, UsesContentTypeWhenBodyHasNoMediaType) {
  std::string body = R"({"schemaVersion":2,"manifests":[{"digest":")" + kD1 +
                     R"(","size":5,"platform":{"os":"linux","architecture":"arm64"}}]})";
  auto idx = std::get<ImageIndex>(
      parse_manifest(body, "application/vnd.docker.distribution.manifest.list.v2+json"));
  EXPECT_EQ(idx.media_type, "application/vnd.docker.distribution.manifest.list.v2+json");
  EXPECT_EQ(select_platform(idx, parse_platform("linux/arm64/v8")).digest, kD1);  // variant omitted
}

TEST(Manifest, RejectsMalformedDocumentsAsCorrupt) {
  for (
      const std::string& body : std::vector<std::string>{
          "[]", "{\"layers\":[]}",
          R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"md5:1","size":1},"layers":[]})",
          R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" +
              kD1 + R"(","size":-1},"layers":[]})",
          R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" +
              kD1 + R"(","size":1},"layers":{}})",
          R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" +
              kD1 + R"(","size":1},"layers":[{"digest":5}]})"}) {
    try {
      parse_manifest(body, "");
      FAIL() << body;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::corrupt) << body << ": " << e.what();
    }
  }
}

// Sizes and counts no real image reaches: refused before any download, and
// sums of sizes cannot overflow.
TEST(Manifest, AbsurdSizesAndLayerCountsAreCorrupt) {
  auto manifest = [](const std::string& layer_size, size_t layers) {
    std::string list;
    for (size_t i = 0; i < layers; ++i) {
      list +=
          std::string(i ? "," : "") + R"({"digest":")" + kD2 + R"(","size":)" + layer_size + "}";
    }
    return R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" +
           kD1 + R"(","size":1},"layers":[)" + list + "]}";
  };
  EXPECT_NO_THROW(parse_manifest(manifest("70368744177664", 1000), ""));  // 64 TiB, 1000 layers
  for (const auto& [body, mentions] : std::vector<std::pair<std::string, std::string>>{
           {manifest("70368744177665", 1), "more than any image blob"},
           {manifest("1152921504606846976", 1), "declares 1152921504606846976 bytes"},
           {manifest("18446744073709551615", 1), "no valid size"},
           {manifest("1", 1001), "1001 layers"}}) {
    try {
      parse_manifest(body, "");
      ADD_FAILURE() << mentions;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::corrupt);
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  }
}

TEST(Manifest, SchemaOneGetsAnActionableError) {
  try {
    parse_manifest(R"({"schemaVersion":1,"fsLayers":[]})", "");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(e.hint().find("re-push"), std::string::npos);
  }
}

TEST(Manifest, MissingPlatformListsWhatExists) {
  ImageIndex idx{"",
                 {Descriptor{"", kD1, 1, Platform{"linux", "amd64", ""}},
                  Descriptor{"", kD2, 1, Platform{"unknown", "unknown", ""}}}};
  try {
    select_platform(idx, parse_platform("ppc64le"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_found);
    EXPECT_NE(std::string(e.what()).find("it has: linux/amd64)"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("--arch"), std::string::npos);
  }
}

TEST(Platform, ParsesShortAndLongForms) {
  EXPECT_EQ(parse_platform("amd64").to_string(), "linux/amd64");
  EXPECT_EQ(parse_platform("linux/arm/v7").to_string(), "linux/arm/v7");
  EXPECT_THROW(parse_platform("linux//x"), Error);
  EXPECT_THROW(parse_platform("a/b/c/d"), Error);
}

TEST(LayerCompression, RecognisesDockerAndOciTypes) {
  EXPECT_EQ(layer_compression("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            LayerCompression::gzip);
  EXPECT_EQ(layer_compression("application/vnd.oci.image.layer.v1.tar"), LayerCompression::none);
  EXPECT_THROW(layer_compression("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
               Error);
  EXPECT_THROW(layer_compression("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"), Error);
}

TEST(ImageConfig, ReadsTheRuntimeFieldsAndRoundTrips) {
  ImageConfig c = parse_image_config(R"({"architecture":"amd64","os":"linux","config":{
    "Env":["PATH=/bin","A=b"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo"],"WorkingDir":"/w","User":"1000:1000",
    "Labels":{"k":"v"},"Volumes":{"/data":{}}},"rootfs":{"type":"layers","diff_ids":[")" +
                                     kD1 + R"("]}})");
  EXPECT_EQ(c.env.size(), 2u);
  EXPECT_EQ(c.entrypoint[1], "-c");
  EXPECT_EQ(c.working_dir, "/w");
  EXPECT_EQ(c.user, "1000:1000");
  EXPECT_EQ(c.labels.at("k"), "v");
  EXPECT_EQ(c.volumes, std::vector<std::string>{"/data"});
  ImageConfig back = ImageConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_THROW(parse_image_config(R"({"config":{"WorkingDir":5}})"), Error);
}

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

TEST(Digest, Sha256OfKnownInput) {
  EXPECT_EQ(sha256_digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(is_sha256_digest(sha256_digest("")));
  EXPECT_FALSE(is_sha256_digest("sha256:../../etc/passwd"));
  EXPECT_FALSE(is_sha256_digest("sha256:" + std::string(64, 'A')));
}

}  // namespace
}  // namespace deepops
