// Credentials and mirror files are user- or admin-written text. The netrc
// parser must never throw or crash, and never invent a machine from nothing;
// the JSON readers end in deepops::Error or succeed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/credentials.hpp"
#include "registry/mirrors.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto entries = deepops::parse_netrc(text);
  if (!entries.empty() && text.find("machine") == std::string_view::npos) std::abort();
  try {
    deepops::docker_config_credential(text, "registry-1.docker.io", "fuzz");
  } catch (const deepops::Error&) {
  }
  try {  // the mirrors file is admin-written JSON, read by every import
    (void)deepops::MirrorConfig::parse(text, "fuzz").rule_for("registry-1.docker.io");
  } catch (const deepops::Error&) {
  }
  return 0;
}
