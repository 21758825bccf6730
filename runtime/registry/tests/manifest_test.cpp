// OCI/Docker manifests, indexes, platforms and image configs.
#include "registry/manifest.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "util/error.hpp"

namespace deepops {
namespace {

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

}  // namespace
}  // namespace deepops
