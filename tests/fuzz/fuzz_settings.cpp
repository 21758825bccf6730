// deepops.conf files (the site's, conf.d, the user's) and the values in them
// are text an admin or a user writes. Invariants: loading returns or throws
// deepops::Error (nothing else, no crash); an error names its file and line;
// the value grammar (sizes, booleans, host lists) holds the same properties on
// the whole input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "config/settings.hpp"
#include "config/values.hpp"
#include "util/error.hpp"

namespace {
namespace fs = std::filesystem;

const fs::path& sysconf() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("fuzz-settings-" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::optional<std::string> lookup(const std::string& name) {
  if (name == "HOME") return std::string("/home/fuzz");
  if (name == "SLURMD_NODENAME") return std::string("n1");
  return std::nullopt;
}

void check_values(const std::string& text) {
  try {
    (void)deepops::parse_size(text, "fuzz");
  } catch (const deepops::Error&) {
  }
  try {
    (void)deepops::parse_bool(text, "fuzz");
  } catch (const deepops::Error&) {
  }
  try {
    for (const auto& host : deepops::parse_host_list(text, "fuzz")) {
      if (host.empty() || host.find_first_of(", \t") != std::string::npos) std::abort();
    }
  } catch (const deepops::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  check_values(text);
  const fs::path file = sysconf() / "deepops.conf";
  std::ofstream(file, std::ios::trunc | std::ios::binary) << text;
  deepops::SettingsSources sources;
  sources.vars = lookup;
  sources.sysconf_dir = sysconf();
  sources.environment = false;
  sources.user_file = false;
  try {
    (void)deepops::Settings::load(sources);
  } catch (const deepops::Error& e) {
    // Every complaint about the file says where in it.
    const std::string what = e.what();
    if (what.find(file.string() + ":") == std::string::npos) std::abort();
  }
  return 0;
}
