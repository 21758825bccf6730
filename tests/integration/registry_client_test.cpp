// RegistryClient against the lab's real registries: the plain one, and the
// TLS one with basic auth and the lab CA.
#include "registry/registry_client.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "lab.hpp"
#include "util/digest.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

using test::Lab;

struct CountingSink : BlobSink {
  size_t bytes = 0;
  int restarts = 0;
  void write(const char*, size_t n) override { bytes += n; }
  void restart() override {
    bytes = 0;
    ++restarts;
  }
};

class RegistryClientTest : public ::testing::Test {
 protected:
  const Lab& lab = Lab::current();
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("regtest-" + std::to_string(getpid()));
  // Trusts the lab CA (plain HTTP needs no trust); one test makes its own.
  std::unique_ptr<HttpClient> connection =
      RegistryClient(parse_registry_image("x"), tls_options("")).connect();
  HttpClient& http = *connection;

  void SetUp() override { std::filesystem::create_directories(dir); }
  void TearDown() override { std::filesystem::remove_all(dir); }

  RegistryOptions plain_options() {
    RegistryOptions o;
    o.allow_http = {lab.var("DEEPOPS_LAB_REGISTRY")};
    o.credentials = CredentialFiles{dir / "none", dir / "none.json", ""};
    o.attempts = 2;
    return o;
  }
  RegistryOptions tls_options(const std::string& password) {
    RegistryOptions o;
    o.http.ca_file = lab.var("DEEPOPS_LAB_CA");
    o.credentials = CredentialFiles{dir / ".credentials", dir / "config.json", ""};
    o.attempts = 2;
    if (!password.empty()) {
      std::ofstream(o.credentials.enroot_netrc) << "machine " << lab.var("DEEPOPS_LAB_REGISTRY_TLS")
                                                << " login labuser password " << password << "\n";
    }
    return o;
  }
  std::string lab_password() {
    std::ifstream in(lab.var("DEEPOPS_LAB_REGISTRY_PASSWORD_FILE"));
    std::string p;
    std::getline(in, p);
    return p;
  }
  RegistryClient plain(const std::string& name) {
    return RegistryClient(
        parse_registry_image(lab.var("DEEPOPS_LAB_REGISTRY") + "/deepops/" + name),
        plain_options());
  }
  RegistryClient tls(const std::string& name, const std::string& password) {
    return RegistryClient(
        parse_registry_image(lab.var("DEEPOPS_LAB_REGISTRY_TLS") + "/deepops/" + name),
        tls_options(password));
  }
  Errc error_of(const std::function<void()>& f, std::string* what = nullptr,
                std::string* hint = nullptr) {
    try {
      f();
    } catch (const Error& e) {
      if (what) *what = e.what();
      if (hint) *hint = e.hint();
      return e.code();
    }
    ADD_FAILURE() << "no error";
    return Errc::internal;
  }
};

TEST_F(RegistryClientTest, ResolvesAndFetchesEveryLayerOfTheLayeredImage) {
  RegistryClient c = plain("layered");
  ResolvedImage img = c.resolve(http, host_platform());
  EXPECT_TRUE(is_sha256_digest(img.manifest_digest));
  EXPECT_TRUE(img.index_digest.empty());
  ASSERT_EQ(img.manifest.layers.size(), 5u);
  ImageConfig config = parse_image_config(c.fetch_small_blob(http, img.manifest.config));
  EXPECT_EQ(config.working_dir, "/data");
  EXPECT_EQ(config.diff_ids.size(), 5u);
  for (const auto& layer : img.manifest.layers) {
    CountingSink sink;
    c.fetch_blob(http, layer, sink);
    EXPECT_EQ(static_cast<int64_t>(sink.bytes), layer.size);
  }
}

TEST_F(RegistryClientTest, SelectsThePlatformFromAnIndex) {
  RegistryClient c = plain("multiarch");
  ResolvedImage amd64 = c.resolve(http, parse_platform("linux/amd64"));
  ResolvedImage arm64 = c.resolve(http, parse_platform("linux/arm64/v8"));
  EXPECT_FALSE(amd64.index_digest.empty());
  EXPECT_EQ(amd64.index_digest, arm64.index_digest);
  EXPECT_NE(amd64.manifest_digest, arm64.manifest_digest);
  EXPECT_EQ(parse_image_config(c.fetch_small_blob(http, arm64.manifest.config)).architecture,
            "arm64");
  EXPECT_EQ(error_of([&] { c.resolve(http, parse_platform("s390x")); }), Errc::not_found);
}

TEST_F(RegistryClientTest, ReadsDockerSchema2AndZstdImages) {
  EXPECT_EQ(plain("tiny-docker").resolve(http, host_platform()).manifest.media_type,
            media_type::kDockerManifest);
  auto zstd = plain("zstd").resolve(http, host_platform());
  for (const auto& l : zstd.manifest.layers)
    EXPECT_EQ(layer_compression(l.media_type), LayerCompression::zstd);
}

TEST_F(RegistryClientTest, ResolvesByDigest) {
  std::string digest = plain("tiny").resolve(http, host_platform()).manifest_digest;
  RegistryClient by_digest(
      parse_registry_image(lab.var("DEEPOPS_LAB_REGISTRY") + "/deepops/tiny@" + digest),
      plain_options());
  EXPECT_EQ(by_digest.resolve(http, host_platform()).manifest_digest, digest);
}

TEST_F(RegistryClientTest, MissingImageOrTagIsNotFoundWithAHint) {
  std::string what, hint;
  EXPECT_EQ(error_of([&] { plain("no-such-image").resolve(http, host_platform()); }, &what, &hint),
            Errc::not_found);
  EXPECT_NE(what.find("no-such-image"), std::string::npos) << what;
  EXPECT_NE(hint.find("list-tags"), std::string::npos) << hint;
}

TEST_F(RegistryClientTest, TlsRegistryWithCredentialsAndTheLabCa) {
  RegistryClient c = tls("tiny", lab_password());
  ResolvedImage img = c.resolve(http, host_platform());
  CountingSink sink;
  c.fetch_blob(http, img.manifest.layers.at(0), sink);
  EXPECT_EQ(static_cast<int64_t>(sink.bytes), img.manifest.layers[0].size);
}

TEST_F(RegistryClientTest, TlsRegistryWithoutCredentialsSaysWhichLineToAdd) {
  std::string what, hint;
  EXPECT_EQ(error_of([&] { tls("tiny", "").resolve(http, host_platform()); }, &what, &hint),
            Errc::auth);
  EXPECT_NE(what.find("requires credentials"), std::string::npos) << what;
  EXPECT_NE(hint.find("machine " + lab.var("DEEPOPS_LAB_REGISTRY_TLS") + " login"),
            std::string::npos)
      << hint;
}

TEST_F(RegistryClientTest, WrongPasswordNamesTheCredentialsLine) {
  std::string what;
  EXPECT_EQ(error_of([&] { tls("tiny", "wrong").resolve(http, host_platform()); }, &what),
            Errc::auth);
  EXPECT_NE(what.find("rejected the credentials from"), std::string::npos) << what;
  EXPECT_NE(what.find(".credentials line 1"), std::string::npos) << what;
}

TEST_F(RegistryClientTest, UntrustedCertificateNamesTheCaOption) {
  RegistryOptions o = tls_options(lab_password());
  o.http.ca_file.clear();
  RegistryClient c(parse_registry_image(lab.var("DEEPOPS_LAB_REGISTRY_TLS") + "/deepops/tiny"), o);
  auto untrusting = c.connect();
  std::string hint;
  EXPECT_EQ(error_of([&] { c.resolve(*untrusting, host_platform()); }, nullptr, &hint),
            Errc::network);
  EXPECT_NE(hint.find("--ca-file"), std::string::npos) << hint;
}

TEST_F(RegistryClientTest, PlainHttpOnlyWhenAllowed) {
  RegistryOptions o = plain_options();
  o.allow_http.clear();
  RegistryClient c(parse_registry_image(lab.var("DEEPOPS_LAB_REGISTRY") + "/deepops/tiny"), o);
  std::string hint;
  EXPECT_EQ(error_of([&] { c.resolve(http, host_platform()); }, nullptr, &hint), Errc::network);
  EXPECT_NE(hint.find("ALLOW_HTTP"), std::string::npos) << hint;    // the setting
  EXPECT_NE(hint.find("--allow-http"), std::string::npos) << hint;  // and the flag
}

TEST_F(RegistryClientTest, PlainHttpToAnHttpsRegistryNamesAllowHttp) {
  // What an ALLOW_HTTP set for every registry (Enroot's ENROOT_ALLOW_HTTP
  // means that) does to one that serves only HTTPS: it answers 400.
  RegistryOptions o = tls_options(lab_password());
  o.allow_http = {"*"};
  RegistryClient c(parse_registry_image(lab.var("DEEPOPS_LAB_REGISTRY_TLS") + "/deepops/tiny"), o);
  std::string what, hint;
  error_of([&] { c.resolve(http, host_platform()); }, &what, &hint);
  EXPECT_NE(what.find("HTTP 400"), std::string::npos) << what;
  EXPECT_NE(hint.find("HTTPS"), std::string::npos) << hint;
  EXPECT_NE(hint.find("ALLOW_HTTP"), std::string::npos) << hint;
}

TEST_F(RegistryClientTest, BlobWithWrongDigestIsCorruptAndRejected) {
  RegistryClient c = plain("tiny");
  ResolvedImage img = c.resolve(http, host_platform());
  Descriptor lie = img.manifest.layers.at(0);
  lie.size -= 1;  // the registry now sends one byte more than promised
  CountingSink sink;
  EXPECT_EQ(error_of([&] { c.fetch_blob(http, lie, sink); }), Errc::corrupt);
}

}  // namespace
}  // namespace deepops
