// What deepops-enroot reads from users and sites: enroot.conf lines (shell
// words, never run), `start -m` arguments (Enroot's colon fstab) and a
// --conf script's printed sections. Invariants: each returns or throws
// deepops::Error, nothing else, no crash (a command substitution is refused,
// never run); every accepted key is non-empty; every accepted mount's target
// is absolute and climbs nowhere; every environ name is a variable name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "config/mount_spec.hpp"
#include "enroot/conf_script.hpp"
#include "enroot/enroot_config.hpp"
#include "enroot/enroot_names.hpp"
#include "util/error.hpp"

namespace {

std::optional<std::string> lookup(const std::string& name) {
  if (name == "HOME") return "/home/fuzz";
  if (name == "DOTS") return "..";
  if (name == "EMPTY") return "";
  return std::nullopt;
}

void check_target(const std::string& t) {
  if (t.empty() || t[0] != '/') std::abort();
  if (t.find("/../") != std::string::npos || t.ends_with("/..")) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const deepops::EnvLookup env = lookup;
  try {
    for (const auto& [key, v] : deepops::enroot::parse_enroot_conf(text, env, "fuzz.conf")) {
      if (key.empty()) std::abort();
      (void)deepops::enroot::enroot_true(v.value);
    }
  } catch (const deepops::Error&) {
  }
  try {
    check_target(deepops::enroot::parse_enroot_mount(text, "/work", env).target);
  } catch (const deepops::Error&) {
  }
  try {
    (void)deepops::enroot::default_image_file(text);
  } catch (const deepops::Error&) {
  }
  try {
    deepops::enroot::ConfScript conf;
    conf.path = "/fuzz/conf.sh";
    deepops::enroot::parse_conf_output(conf, text, "@@m", env);
    for (const auto& [name, value] : conf.environ) {
      if (!deepops::is_valid_env_name(name)) std::abort();
    }
    for (const auto& m : conf.mounts) check_target(m.target);
  } catch (const deepops::Error&) {
  }
  return 0;
}
