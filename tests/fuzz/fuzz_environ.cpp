// Environ files (environ.d/*.env) and hook output are KEY=VALUE text that
// ends up in the container's environment. Invariants: parsing either returns
// or throws deepops::Error (nothing else, no crash), every accepted name is a
// valid variable name, and no value spans lines.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/mount_spec.hpp"
#include "util/error.hpp"

namespace {

std::optional<std::string> lookup(const std::string& name) {
  static const std::map<std::string, std::string> vars = {
      {"HOME", "/home/fuzz"}, {"PATH", "/usr/bin:/bin"}, {"EMPTY", ""},
      {"EQ", "A=B"},          {"QUOTE", "\""},           {"REF", "${HOME}"}};
  auto it = vars.find(name);
  if (it == vars.end()) return std::nullopt;
  return it->second;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& [name, value] : deepops::parse_environ_text(text, lookup, "fuzz.env")) {
      if (!deepops::is_valid_env_name(name)) std::abort();
      if (value.find('\n') != std::string::npos) std::abort();
    }
  } catch (const deepops::Error&) {
  }
  return 0;
}
