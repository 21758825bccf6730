// Fuzz target for the image reference parser, which takes text straight from
// users' job scripts. Invariants: it either returns or throws deepops::Error
// (nothing else, no crash), and an accepted registry image's canonical form
// parses back to the same image.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "usecases/image_source.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    deepops::ImageSource src = deepops::parse_image_source(text);
    if (auto* image = std::get_if<deepops::RegistryImage>(&src)) {
      deepops::RegistryImage again = deepops::parse_registry_image(image->canonical());
      image->user.clear();
      if (!(again == *image)) std::abort();
    }
  } catch (const deepops::Error&) {
  }
  return 0;
}
