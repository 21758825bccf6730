// Offline images from an OCI image layout folder (skopeo's oci:DIR:TAG):
// the image chosen by its tag, and every blob checked against its digest.
#include "image/image_origin.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "error_matchers.hpp"
#include "util/digest.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;
using ::deepops::testing::error_of;
using nlohmann::json;

const std::optional<Errc> kErrorCode = std::nullopt;

constexpr const char* kLayerType = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kConfigType = "application/vnd.oci.image.config.v1+json";

struct StringSink : BlobSink {
  std::string data;
  int restarts = 0;
  void write(const char* bytes, size_t size) override { data.append(bytes, size); }
  void restart() override {
    data.clear();
    ++restarts;
  }
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class OciLayoutOriginTest : public ::testing::Test {
 protected:
  fs::path dir =
      fs::temp_directory_path() / ("image-origin-" + std::to_string(getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());

  struct Image {
    Descriptor manifest, config, layer;
    std::string config_body, layer_body;
  };

  void SetUp() override {
    fs::remove_all(dir);
    fs::create_directories(dir / "blobs/sha256");
    std::ofstream(dir / "oci-layout") << R"({"imageLayoutVersion": "1.0.0"})";
  }
  void TearDown() override { fs::remove_all(dir); }

  // Writes `body` as blobs/sha256/<its sha256>.
  Descriptor blob(const std::string& body, const std::string& media_type) {
    Descriptor d;
    d.media_type = media_type;
    d.digest = sha256_digest(body);
    d.size = static_cast<int64_t>(body.size());
    std::ofstream(blob_path(d), std::ios::binary) << body;
    return d;
  }
  fs::path blob_path(const Descriptor& d) const {
    return dir / "blobs/sha256" / d.digest.substr(7);
  }

  static json descriptor_json(const Descriptor& d) {
    return {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  }

  // One image: a layer, a config naming `cmd`, a manifest.
  Image image(const std::string& cmd, const std::string& arch = "amd64") {
    Image out;
    out.layer_body = "layer bytes of " + cmd + " " + std::string(1000, 'L');
    out.layer = blob(out.layer_body, kLayerType);
    json config = {{"architecture", arch},
                   {"os", "linux"},
                   {"config", {{"Env", {"PATH=/usr/bin"}}, {"Cmd", {cmd}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {out.layer.digest}}}}};
    out.config_body = config.dump();
    out.config = blob(out.config_body, kConfigType);
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", std::string(media_type::kOciManifest)},
                     {"config", descriptor_json(out.config)},
                     {"layers", {descriptor_json(out.layer)}}};
    out.manifest = blob(manifest.dump(), std::string(media_type::kOciManifest));
    return out;
  }

  // index.json listing `entries`, each named by its ref.name annotation ("": none).
  // The layout holding `a` alone, tagged latest, opened by that tag.
  std::unique_ptr<ImageOrigin> latest_of(const Image& a) {
    write_index({{a.manifest, "latest"}});
    return oci_layout_origin(dir, "latest");
  }
  void write_index(const std::vector<std::pair<Descriptor, std::string>>& entries) {
    json manifests = json::array();
    for (const auto& [d, name] : entries) {
      json e = descriptor_json(d);
      if (!name.empty()) e["annotations"] = {{"org.opencontainers.image.ref.name", name}};
      manifests.push_back(e);
    }
    json index = {{"schemaVersion", 2},
                  {"mediaType", std::string(media_type::kOciIndex)},
                  {"manifests", manifests}};
    std::ofstream(dir / "index.json") << index.dump();
  }

  static Platform amd64() { return Platform{"linux", "amd64", ""}; }
};

TEST_F(OciLayoutOriginTest, ResolvePicksTheTaggedImage) {
  Image a = image("/bin/a"), b = image("/bin/b");
  write_index({{a.manifest, "v1"}, {b.manifest, "v2"}});
  for (const auto& [tag, want] : {std::pair{"v1", &a}, std::pair{"v2", &b}}) {
    SCOPED_TRACE(tag);
    auto origin = oci_layout_origin(dir, tag);
    ResolvedImage r = origin->resolve(amd64());
    EXPECT_EQ(r.manifest_digest, want->manifest.digest);
    EXPECT_EQ(r.index_digest, "");
    EXPECT_EQ(r.manifest.config.digest, want->config.digest);
    ASSERT_EQ(r.manifest.layers.size(), 1u);
    EXPECT_EQ(r.manifest.layers[0].digest, want->layer.digest);
    EXPECT_EQ(r.manifest.layers[0].size, want->layer.size);
  }
}

TEST_F(OciLayoutOriginTest, FetchSmallBlobReturnsTheConfig) {
  Image a = image("/bin/a");
  auto origin = latest_of(a);
  ResolvedImage r = origin->resolve(amd64());
  std::string body = origin->fetch_small_blob(r.manifest.config);
  EXPECT_EQ(body, a.config_body);
  ImageConfig config = parse_image_config(body);
  EXPECT_EQ(config.cmd, (std::vector<std::string>{"/bin/a"}));
  EXPECT_EQ(config.diff_ids, (std::vector<std::string>{a.layer.digest}));
}

TEST_F(OciLayoutOriginTest, FetchBlobStreamsTheLayer) {
  Image a = image("/bin/a");
  auto origin = latest_of(a);
  ResolvedImage r = origin->resolve(amd64());
  StringSink sink;
  origin->fetch_blob(r.manifest.layers[0], sink);
  EXPECT_EQ(sink.data, a.layer_body);
  EXPECT_EQ(sink.restarts, 0);
}

TEST_F(OciLayoutOriginTest, TheReferenceNamesTheFolderAndTag) {
  Image a = image("/bin/a");
  write_index({{a.manifest, "v1"}});
  auto origin = oci_layout_origin(dir, "v1");
  EXPECT_EQ(origin->reference(), "oci:" + fs::absolute(dir).string() + ":v1");
  EXPECT_EQ(origin->served_by(), "oci:" + fs::absolute(dir).string());
  EXPECT_EQ(oci_layout_origin(dir, "")->reference(), "oci:" + fs::absolute(dir).string());
}

TEST_F(OciLayoutOriginTest, AnAbsentTagIsNotFoundListingTheTagsThereAre) {
  Image a = image("/bin/a"), b = image("/bin/b");
  write_index({{a.manifest, "v1"}, {b.manifest, "v2"}});
  auto origin = oci_layout_origin(dir, "v3");
  const std::string message = error_of([&] { origin->resolve(amd64()); }, Errc::not_found);
  EXPECT_TRUE(contains(message, "'v3'")) << message;
  EXPECT_TRUE(contains(message, dir.string())) << message;
  EXPECT_TRUE(contains(message, "v1, v2")) << message;
}

TEST_F(OciLayoutOriginTest, NoTagTakesTheOnlyImageButNotOneOfSeveral) {
  Image a = image("/bin/a");
  write_index({{a.manifest, ""}});
  EXPECT_EQ(oci_layout_origin(dir, "")->resolve(amd64()).manifest_digest, a.manifest.digest);

  Image b = image("/bin/b");
  write_index({{a.manifest, "v1"}, {b.manifest, ""}});
  const std::string message =
      error_of([&] { oci_layout_origin(dir, "")->resolve(amd64()); }, Errc::not_found);
  EXPECT_TRUE(contains(message, "no image chosen")) << message;
  // An unnamed entry is listed by its digest's start.
  EXPECT_TRUE(contains(message, "v1, " + b.manifest.digest.substr(0, 19))) << message;
}

TEST_F(OciLayoutOriginTest, AnIndexIsResolvedForThePlatform) {
  Image amd = image("/bin/amd", "amd64"), arm = image("/bin/arm", "arm64");
  json amd_json = descriptor_json(amd.manifest);
  amd_json["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  json arm_json = descriptor_json(arm.manifest);
  arm_json["platform"] = {{"os", "linux"}, {"architecture", "arm64"}};
  json index = {{"schemaVersion", 2},
                {"mediaType", std::string(media_type::kOciIndex)},
                {"manifests", {amd_json, arm_json}}};
  Descriptor top = blob(index.dump(), std::string(media_type::kOciIndex));
  write_index({{top, "multi"}});

  auto origin = oci_layout_origin(dir, "multi");
  ResolvedImage r = origin->resolve(Platform{"linux", "arm64", ""});
  EXPECT_EQ(r.manifest_digest, arm.manifest.digest);
  EXPECT_EQ(r.index_digest, top.digest);
  EXPECT_EQ(origin->fetch_small_blob(r.manifest.config), arm.config_body);
  EXPECT_EQ(origin->resolve(amd64()).manifest_digest, amd.manifest.digest);
  const std::string message = error_of(
      [&] {
        origin->resolve(Platform{"linux", "ppc64le", ""});
      },
      Errc::not_found);
  EXPECT_TRUE(contains(message, "linux/amd64, linux/arm64")) << message;
}

TEST_F(OciLayoutOriginTest, AConfigThatDoesNotMatchItsDigestIsRefused) {
  Image a = image("/bin/a");
  auto origin = latest_of(a);
  ResolvedImage r = origin->resolve(amd64());
  // Same size, other bytes: only the digest tells.
  std::string tampered = a.config_body;
  tampered[tampered.find("/bin/a")] = '_';
  std::ofstream(blob_path(a.config), std::ios::binary) << tampered;
  const std::string message =
      error_of([&] { origin->fetch_small_blob(r.manifest.config); }, Errc::corrupt);
  EXPECT_TRUE(contains(message, a.config.digest)) << message;
  EXPECT_TRUE(contains(message, "does not match")) << message;
}

TEST_F(OciLayoutOriginTest, ALayerThatDoesNotMatchItsDigestIsRefused) {
  Image a = image("/bin/a");
  auto origin = latest_of(a);
  ResolvedImage r = origin->resolve(amd64());
  const Descriptor layer = r.manifest.layers[0];

  std::string tampered = a.layer_body;
  tampered.back() = 'X';
  std::ofstream(blob_path(layer), std::ios::binary) << tampered;
  StringSink sink;
  std::string message = error_of([&] { origin->fetch_blob(layer, sink); }, Errc::corrupt);
  EXPECT_TRUE(contains(message, layer.digest) && contains(message, "does not match")) << message;

  // Longer or shorter than its descriptor says: refused too.
  std::ofstream(blob_path(layer), std::ios::binary) << a.layer_body << "more";
  error_of([&] { origin->fetch_blob(layer, sink); }, Errc::corrupt);
  std::ofstream(blob_path(layer), std::ios::binary) << a.layer_body.substr(1);
  error_of([&] { origin->fetch_blob(layer, sink); }, Errc::corrupt);
  // The right bytes again: accepted.
  std::ofstream(blob_path(layer), std::ios::binary) << a.layer_body;
  StringSink good;
  origin->fetch_blob(layer, good);
  EXPECT_EQ(good.data, a.layer_body);
}

TEST_F(OciLayoutOriginTest, ATamperedManifestIsRefusedAtResolve) {
  Image a = image("/bin/a");
  write_index({{a.manifest, "latest"}});
  std::string body;
  {
    std::ifstream in(blob_path(a.manifest), std::ios::binary);
    body.assign(std::istreambuf_iterator<char>(in), {});
  }
  body.back() = ' ';  // was '}': still the same size
  std::ofstream(blob_path(a.manifest), std::ios::binary) << body;
  const std::string message =
      error_of([&] { oci_layout_origin(dir, "latest")->resolve(amd64()); }, Errc::corrupt);
  EXPECT_TRUE(contains(message, a.manifest.digest)) << message;
}

TEST_F(OciLayoutOriginTest, AMissingBlobIsNotFound) {
  Image a = image("/bin/a");
  auto origin = latest_of(a);
  ResolvedImage r = origin->resolve(amd64());
  fs::remove(blob_path(a.layer));
  fs::remove(blob_path(a.config));
  StringSink sink;
  std::string message =
      error_of([&] { origin->fetch_blob(r.manifest.layers[0], sink); }, Errc::not_found);
  EXPECT_TRUE(contains(message, a.layer.digest)) << message;
  error_of([&] { origin->fetch_small_blob(r.manifest.config); }, Errc::not_found);
}

TEST_F(OciLayoutOriginTest, AFolderWithoutTheLayoutFilesIsNotALayout) {
  fs::remove(dir / "oci-layout");
  EXPECT_ERROR_MENTIONS(oci_layout_origin(dir, "latest"), "is not an OCI image layout",
                        dir.string());
  std::ofstream(dir / "oci-layout") << R"({"imageLayoutVersion": "1.0.0"})";
  // No index.json either.
  EXPECT_EQ(error_of([&] { oci_layout_origin(dir, "latest"); }, Errc::not_found).empty(), false);
}

}  // namespace
}  // namespace deepops
