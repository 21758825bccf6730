#include "config/settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kMaxImageMountLinger = 24 * 3600;

const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> keys = {
      "RUNTIME_PATH",        "CACHE_PATH",     "DATA_PATH",       "CONFIG_PATH",
      "MOUNT_HOME",          "REMAP_ROOT",     "ROOTFS_WRITABLE", "RESTRICT_DEV",
      "DRIVER_LIBRARY_DIRS", "HOST_ROOT",      "OVERLAY",         "SLURM_TMPFS",
      "ALLOW_HTTP",          "CA_FILE",        "SYSTEM_CACHE",    "IMPORT_MAX_SIZE",
      "IMPORT_MAX_ENTRIES",  "SECCOMP_FILTER", "MIRRORS_CONFIG",  "IMAGE_MOUNT_LINGER"};
  return keys;
}

// Enroot's cache and data folders hold other formats than ours: only keys
// that mean the same thing are read under their ENROOT_ name.
bool is_enroot_alias(const std::string& key) {
  const auto& keys = known_keys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) return false;
  return key != "CACHE_PATH" && key != "DATA_PATH" && key != "DRIVER_LIBRARY_DIRS" &&
         key != "HOST_ROOT" && key != "OVERLAY" && key != "SLURM_TMPFS" && key != "CA_FILE" &&
         key != "SYSTEM_CACHE" && key != "SECCOMP_FILTER" && key != "MIRRORS_CONFIG" &&
         key != "IMAGE_MOUNT_LINGER" && !key.starts_with("IMPORT_MAX_");
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> files_in(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ext && e.is_regular_file(ec)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string strip_prefix(const std::string& key) {
  for (const char* p : {"DEEPOPS_", "ENROOT_"}) {
    if (key.starts_with(p)) return key.substr(std::string(p).size());
  }
  return key;
}

void load_file(Settings& s, const fs::path& file, const EnvLookup& env) {
  std::istringstream in(read_text(file));
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first);
    auto sep = line.find_first_of(" \t=");
    std::string key = line.substr(0, sep);
    std::string value;
    if (sep != std::string::npos) {
      value = line.substr(line.find_first_not_of(" \t=", sep) == std::string::npos
                              ? line.size()
                              : line.find_first_not_of(" \t=", sep));
      while (!value.empty() &&
             (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
        value.pop_back();
    }
    const std::string where = file.string() + ":" + std::to_string(number);
    // An enroot.conf copied here may hold Enroot's own keys: those that do
    // not mean the same for us are skipped, not errors.
    if (key.starts_with("ENROOT_") && !is_enroot_alias(strip_prefix(key))) continue;
    std::string expanded;
    try {
      expanded = substitute_env(value, env);
    } catch (const Error& e) {
      throw Error(e.code(), where + ": " + e.what(), e.hint());
    }
    s.set(strip_prefix(key), expanded, where);
  }
}

// The site's folder NAME, the extra ones, then the user's: none when
// CONFIG_PATH is empty, never a relative "NAME" in whatever folder the
// process is in.
std::vector<fs::path> layered_dirs(const Settings& s, const char* name) {
  std::vector<fs::path> bases = {s.sysconf_dir};
  bases.insert(bases.end(), s.extra_conf_dirs.begin(), s.extra_conf_dirs.end());
  bases.push_back(s.config_path);
  std::vector<fs::path> dirs;
  for (const auto& base : bases) {
    if (!base.empty()) dirs.push_back(base / name);
  }
  return dirs;
}

bool skipped(const Settings& s, const fs::path& file) {
  return s.skipped_conf_files.count(file.filename().string()) != 0;
}

fs::path home_dir(const EnvLookup& env) { return env("HOME").value_or("/"); }

}  // namespace

void Settings::set(const std::string& key, const std::string& value, const std::string& where) {
  const std::string what = where + ": " + key;
  if (key == "RUNTIME_PATH") {
    runtime_path = value;
  } else if (key == "CACHE_PATH") {
    cache_path = value;
  } else if (key == "DATA_PATH") {
    data_path = value;
  } else if (key == "CONFIG_PATH") {
    config_path = value;
  } else if (key == "MOUNT_HOME") {
    mount_home = parse_bool(value, what);
  } else if (key == "SECCOMP_FILTER") {
    seccomp_filter = parse_bool(value, what);
  } else if (key == "REMAP_ROOT") {
    remap_root = parse_bool(value, what);
  } else if (key == "ROOTFS_WRITABLE") {
    rootfs_writable = parse_bool(value, what);
  } else if (key == "RESTRICT_DEV") {
    restrict_dev = parse_bool(value, what);
  } else if (key == "DRIVER_LIBRARY_DIRS") {
    driver_library_dirs = split_list(value, ':');
  } else if (key == "OVERLAY") {
    try {
      overlay = parse_overlay_kind(value);
    } catch (const Error& e) {
      throw Error(Errc::invalid_argument, where + ": " + e.what());
    }
  } else if (key == "SLURM_TMPFS") {
    slurm_tmpfs = value.empty() ? "/tmp" : value;
  } else if (key == "ALLOW_HTTP") {
    allow_http = parse_host_list(value, what);
  } else if (key == "CA_FILE") {
    ca_file = value;
  } else if (key == "SYSTEM_CACHE") {
    system_caches.clear();
    for (const auto& dir : split_list(value, ':')) system_caches.emplace_back(dir);
  } else if (key == "MIRRORS_CONFIG") {
    mirrors_config = value;
  } else if (key == "IMPORT_MAX_SIZE" || key == "IMPORT_MAX_ENTRIES") {
    const uint64_t n = parse_size(value, what);
    if (n == 0) {
      throw Error(Errc::invalid_argument, what + ": must be more than 0",
                  "leave it unset for the default");
    }
    (key == "IMPORT_MAX_SIZE" ? import_limits.max_bytes : import_limits.max_entries) = n;
  } else if (key == "IMAGE_MOUNT_LINGER") {
    image_mount_linger = std::chrono::seconds(parse_seconds(value, what, kMaxImageMountLinger));
  } else if (key == "HOST_ROOT") {
    host_root = value.empty() ? "/" : value;
  } else {
    throw Error(Errc::invalid_argument, where + ": unknown setting '" + key + "'",
                "the keys are listed in man deepops-ctr (FILES) and deepops.conf.example");
  }
  origin[key] = where;
}

SettingsSources SettingsSources::from_environment(const EnvLookup& env) {
  SettingsSources sources;
  sources.vars = env;
  if (auto dir = env("DEEPOPS_SYSCONF_DIR"); dir && !dir->empty()) sources.sysconf_dir = *dir;
  return sources;
}

Settings Settings::load(const SettingsSources& sources) {
  const EnvLookup& env = sources.vars;
  Settings s;
  const fs::path home = home_dir(env);
  const std::string uid = std::to_string(getuid());
  auto xdg = [&](const char* var, const fs::path& fallback) {
    auto v = env(var);
    return v && !v->empty() ? fs::path(*v) : fallback;
  };
  auto runtime = env("XDG_RUNTIME_DIR");
  s.runtime_path = runtime && !runtime->empty() && access(runtime->c_str(), W_OK) == 0
                       ? fs::path(*runtime) / "deepops"
                       : fs::path("/tmp/deepops-" + uid);
  s.cache_path = xdg("XDG_CACHE_HOME", home / ".cache") / "deepops";
  s.data_path = xdg("XDG_DATA_HOME", home / ".local/share") / "deepops";
  s.config_path = xdg("XDG_CONFIG_HOME", home / ".config") / "deepops";
  s.sysconf_dir = sources.sysconf_dir;
  s.mirrors_config = s.sysconf_dir / "mirrors.json";
  for (const auto& k : known_keys()) s.origin[k] = "default";

  if (fs::exists(s.sysconf_dir / "deepops.conf")) load_file(s, s.sysconf_dir / "deepops.conf", env);
  for (const auto& f : files_in(s.sysconf_dir / "conf.d", ".conf")) load_file(s, f, env);
  // The variables, each once, DEEPOPS_ winning over ENROOT_.
  std::vector<std::pair<std::string, std::string>> variables;
  for (const auto& key : sources.environment ? known_keys() : std::vector<std::string>{}) {
    for (const char* prefix : {"DEEPOPS_", "ENROOT_"}) {
      if (prefix[0] == 'E' && !is_enroot_alias(key)) continue;
      if (auto v = env(prefix + key); v && !v->empty()) {  // empty means unset
        variables.emplace_back(prefix + key, *v);
        break;
      }
    }
  }
  if (sources.user_file) {
    fs::path dir = s.config_path;
    for (const auto& [name, value] : variables) {
      if (name.ends_with("_CONFIG_PATH")) dir = value;
    }
    if (fs::exists(dir / "deepops.conf")) load_file(s, dir / "deepops.conf", env);
  }
  for (const auto& [name, value] : variables) {
    s.set(strip_prefix(name), value, "environment (" + name + ")");
  }
  return s;
}

std::vector<MountEntry> Settings::load_mounts(const EnvLookup& env) const {
  std::vector<MountEntry> out;
  for (const auto& dir : layered_dirs(*this, "mounts.d")) {
    for (const auto& f : files_in(dir, ".fstab")) {
      if (skipped(*this, f)) continue;
      auto more = parse_mounts_text(read_text(f), env, f.string());
      out.insert(out.end(), more.begin(), more.end());
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const MountEntry& a, const MountEntry& b) { return a.order < b.order; });
  return out;
}

std::vector<std::pair<std::string, std::string>> Settings::load_environ(
    const EnvLookup& env) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& dir : layered_dirs(*this, "environ.d")) {
    for (const auto& f : files_in(dir, ".env")) {
      if (skipped(*this, f)) continue;
      auto more = parse_environ_text(read_text(f), env, f.string());
      out.insert(out.end(), more.begin(), more.end());
    }
  }
  return out;
}

std::vector<fs::path> Settings::hooks() const {
  std::vector<fs::path> out;
  for (const auto& dir : layered_dirs(*this, "hooks.d")) {
    std::vector<fs::path> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec) && access(e.path().c_str(), X_OK) == 0 && !skipped(*this, e.path()))
        found.push_back(e.path());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

}  // namespace deepops
