// The values users give the SPANK plugin's --container-* options (and their
// PYXIS_CONTAINER_* variables). Invariants: each option either applies or
// throws deepops::Error (nothing else, no crash); accepted mounts have
// normalised targets without "..", binds an absolute source.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "deepops/error.hpp"
#include "job_options.hpp"

namespace {

std::optional<std::string> lookup(const std::string& name) {
  if (name == "HOME") return "/home/fuzz";
  if (name == "DOTS") return "/..";
  return std::nullopt;
}

void check(const deepops::MountEntry& m) {
  if (m.target.empty() || m.target[0] != '/' || m.target.find("/../") != std::string::npos ||
      m.target.ends_with("/..")) {
    std::abort();
  }
  if (m.bind && (m.source.empty() || m.source[0] != '/')) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // First byte picks the option; the rest is its value.
  if (size == 0) return 0;
  const auto& options = deepops::spank::container_options();
  const auto& option = options[data[0] % options.size()];
  std::string value(reinterpret_cast<const char*>(data + 1), size - 1);
  deepops::spank::ContainerRequest r;
  try {
    deepops::spank::apply_option(r, option.name, option.arginfo ? value.c_str() : nullptr, lookup);
  } catch (const deepops::Error&) {
  }
  for (const auto& m : r.mounts) check(m);
  try {
    for (const auto& m : deepops::spank::parse_container_mounts(value, lookup)) check(m);
  } catch (const deepops::Error&) {
  }
  return 0;
}
