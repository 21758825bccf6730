// The values users give the SPANK plugin's --container-* options (and their
// PYXIS_CONTAINER_* variables). Invariants: each option either applies or
// throws deepops::Error (nothing else, no crash); accepted mounts have
// normalised targets without "..", binds an absolute source once relative
// ones ("./x", resolved against the job's directory) are resolved; a
// working directory is absolute and has no "..".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "job_options.hpp"
#include "util/error.hpp"

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

void check_request(deepops::spank::ContainerRequest& r) {
  for (const auto& m : r.mounts) {
    if (m.bind && !deepops::is_relative_source(m) && m.source[0] != '/') std::abort();
  }
  deepops::spank::resolve_mount_sources(r, "/submit/dir");
  for (const auto& m : r.mounts) check(m);
  const auto& w = r.workdir;
  if (!w.empty() && (w[0] != '/' || w.find("/../") != std::string::npos || w.ends_with("/.."))) {
    std::abort();
  }
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
  check_request(r);
  try {
    deepops::spank::ContainerRequest parsed;
    parsed.mounts = deepops::spank::parse_container_mounts(value, lookup);
    check_request(parsed);
  } catch (const deepops::Error&) {
  }
  return 0;
}
