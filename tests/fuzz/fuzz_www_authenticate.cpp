// The WWW-Authenticate header comes from any server a user names. The parser
// must never throw or crash, and every challenge it returns has a scheme.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/www_authenticate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto challenges =
      deepops::parse_www_authenticate(std::string_view(reinterpret_cast<const char*>(data), size));
  for (const auto& c : challenges) {
    if (c.scheme.empty()) std::abort();
  }
  return 0;
}
