// Manifests, indexes and image configs come from registries. Malformed ones
// must end in deepops::Error, never another exception or a crash; parsed ones
// only carry digests that are safe to use as cache file names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "registry/manifest.hpp"
#include "util/digest.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto parsed = deepops::parse_manifest(text, "application/vnd.oci.image.manifest.v1+json");
    if (auto* m = std::get_if<deepops::ImageManifest>(&parsed)) {
      if (!deepops::is_sha256_digest(m->config.digest)) std::abort();
      for (const auto& l : m->layers) {
        if (!deepops::is_sha256_digest(l.digest) || l.size < 0) std::abort();
      }
    } else {
      const auto& index = std::get<deepops::ImageIndex>(parsed);
      try {
        (void)deepops::select_platform(index, deepops::host_platform());
      } catch (const deepops::Error&) {
      }
    }
  } catch (const deepops::Error&) {
  }
  try {
    auto config = deepops::parse_image_config(text);
    (void)deepops::ImageConfig::from_json(config.to_json());
  } catch (const deepops::Error&) {
  }
  return 0;
}
