#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace deepops {

namespace media_type {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
// What to send as Accept: a registry that gets no Accept header answers OCI
// images with 404 MANIFEST_UNKNOWN (tests/lab/README.md, "Facts about this lab").
std::string accept_header();
}  // namespace media_type

struct Platform {
  std::string os = "linux";
  std::string architecture;
  std::string variant;

  std::string to_string() const;  // "linux/arm64/v8"
};

// "amd64", "linux/arm64", "linux/arm/v7" (throws invalid_argument otherwise).
Platform parse_platform(std::string_view text);
// This machine, in OCI's names (x86_64 -> amd64, aarch64 -> arm64/v8).
Platform host_platform();

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::optional<Platform> platform;
};

struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ImageIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

// Parses a manifest or index (OCI or Docker v2s2). The media type comes from
// the body, falling back to the Content-Type header. Throws
// Error(corrupt) naming what is wrong for malformed documents, and
// Error(invalid_argument) for formats we do not import (schema 1, artifacts).
std::variant<ImageManifest, ImageIndex> parse_manifest(std::string_view body,
                                                       std::string_view content_type);

// The entry of the index for `want`; throws Error(not_found) listing the
// platforms the image has.
const Descriptor& select_platform(const ImageIndex& index, const Platform& want);

enum class LayerCompression { none, gzip, zstd };
// Throws Error(invalid_argument) for layers we cannot import (foreign or
// encrypted layers), naming the media type.
LayerCompression layer_compression(std::string_view media_type);

// What a container start needs from the image config: kept with the image.
struct ImageConfig {
  std::string architecture;
  std::string os;
  std::vector<std::string> env;  // "NAME=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::map<std::string, std::string> labels;
  std::vector<std::string> volumes;
  std::vector<std::string> diff_ids;

  nlohmann::json to_json() const;
  static ImageConfig from_json(const nlohmann::json& j);
};

// Parses an image config blob (throws Error(corrupt) when malformed).
ImageConfig parse_image_config(std::string_view body);

}  // namespace deepops
