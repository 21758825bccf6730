#include "enroot/enroot_config.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops::enroot {
namespace fs = std::filesystem;
namespace {

// The keys that map onto a runtime setting of the same meaning.
const std::map<std::string, std::string>& same_meaning() {
  static const std::map<std::string, std::string> keys = {
      {"ENROOT_RUNTIME_PATH", "RUNTIME_PATH"},
      {"ENROOT_CONFIG_PATH", "CONFIG_PATH"},
      {"ENROOT_MOUNT_HOME", "MOUNT_HOME"},
      {"ENROOT_REMAP_ROOT", "REMAP_ROOT"},
      {"ENROOT_ROOTFS_WRITABLE", "ROOTFS_WRITABLE"},
      {"ENROOT_RESTRICT_DEV", "RESTRICT_DEV"},
      {"ENROOT_ALLOW_HTTP", "ALLOW_HTTP"}};
  return keys;
}

// The keys deepops-enroot reads itself (start, create, import, batch).
const std::vector<std::string>& front_end_keys() {
  static const std::vector<std::string> keys = {"ENROOT_SYSCONF_PATH",     "ENROOT_FORCE_OVERRIDE",
                                                "ENROOT_SQUASH_OPTIONS",   "ENROOT_MAX_CONNECTIONS",
                                                "ENROOT_NATIVE_OVERLAYFS", "ENROOT_UNSHARE_NET",
                                                "ENROOT_UNSHARE_IPC",      "ENROOT_UNSHARE_UTS"};
  return keys;
}

// Those, #ENROOT_ROOTFS (batch's directive) and Enroot's own ENROOT_VERSION.
bool read_by_front_end(const std::string& key) {
  const auto& keys = front_end_keys();
  return key == "ENROOT_ROOTFS" || key == "ENROOT_VERSION" ||
         std::find(keys.begin(), keys.end(), key) != keys.end();
}

// Enroot's keys that cannot mean anything here, and why.
const std::map<std::string, std::string>& without_meaning() {
  static const std::map<std::string, std::string> keys = {
      {"ENROOT_LIBRARY_PATH", "deepops-enroot has no shell library"},
      {"ENROOT_CACHE_PATH",
       "images are kept in the runtime's CACHE_PATH, shared with the Slurm plugin "
       "(DEEPOPS_CACHE_PATH moves it): Enroot's cache holds layers in another format"},
      {"ENROOT_DATA_PATH",
       "containers are kept in the runtime's DATA_PATH, shared with the plugin's "
       "--container-name (DEEPOPS_DATA_PATH moves it): Enroot's data folder holds extracted "
       "root filesystems, which this runtime neither starts nor removes"},
      {"ENROOT_TEMP_PATH", "imports work in the cache folder and extract nothing"},
      {"ENROOT_GZIP_PROGRAM", "layers are decompressed in-process (ISA-L, libzstd)"},
      {"ENROOT_ZSTD_OPTIONS", "layers are decompressed in-process (libzstd)"},
      {"ENROOT_MAX_PROCESSORS", "the squashfs writer uses the CPUs the process may run on"},
      {"ENROOT_CONNECT_TIMEOUT", "the registry client's own timeouts apply"},
      {"ENROOT_TRANSFER_TIMEOUT", "the registry client's own timeouts apply"},
      {"ENROOT_TRANSFER_RETRIES", "the registry client retries what a retry can fix"},
      {"ENROOT_LOGIN_SHELL", "commands run directly, not through a login shell"},
      {"ENROOT_ALLOW_SUPERUSER", "containers always run in a user namespace"},
      {"ENROOT_BUNDLE_ALL", "enroot bundle is not provided"},
      {"ENROOT_BUNDLE_CHECKSUM", "enroot bundle is not provided"},
      {"ENROOT_SET_USER_XATTRS", "user.* extended attributes are always kept"},
      {"ENROOT_UNSHARE_PID",
       "no PID namespace: the container's processes stay visible to Slurm's proctrack"}};
  return keys;
}

bool is_exported_key(const std::string& key) {
  return key.starts_with("NVIDIA_") || key.starts_with("MELLANOX_") || key == "SSL_CERT_DIR" ||
         key == "SSL_CERT_FILE" || key == "all_proxy" || key == "no_proxy" || key == "http_proxy" ||
         key == "https_proxy";
}

bool is_enroot_key(const std::string& key) {
  if (!key.starts_with("ENROOT_") || key.size() == 7) return false;
  return std::all_of(key.begin() + 7, key.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
}

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// One shell word, as `eval echo` leaves it: quotes removed, variables
// expanded. Whitespace between words is kept as one space.
std::string expand_word(std::string_view text, const EnvLookup& env, const std::string& where) {
  std::string out;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        out += c;
      continue;
    }
    if (c == '\\' && i + 1 < text.size()) {
      out += text[++i];
    } else if (c == '\'' || c == '"') {
      quote = quote == c ? 0 : (quote ? quote : c);
      if (quote != c && quote != 0) out += c;
    } else if (c == '`' || (c == '$' && i + 1 < text.size() && text[i + 1] == '(')) {
      throw Error(Errc::invalid_argument, where + ": a command substitution is not run here",
                  "write the value itself");
    } else if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const size_t end = text.find('}', i + 2);
      if (end == std::string_view::npos) {
        throw Error(Errc::invalid_argument, where + ": unterminated '${'", "close it with '}'");
      }
      std::string name(text.substr(i + 2, end - i - 2));
      std::string fallback;
      if (auto dash = name.find(":-"); dash != std::string::npos) {
        fallback = name.substr(dash + 2);
        name.resize(dash);
      }
      auto v = env(name);
      out += v && !v->empty() ? *v : fallback;
      i = end;
    } else if (c == '$' && i + 1 < text.size() && is_name_char(text[i + 1])) {
      size_t end = i + 1;
      while (end < text.size() && is_name_char(text[end])) ++end;
      out += env(std::string(text.substr(i + 1, end - i - 1))).value_or("");
      i = end - 1;
    } else if (!quote && (c == ' ' || c == '\t')) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  if (quote) throw Error(Errc::invalid_argument, where + ": unterminated quote", "close it");
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The words of ENROOT_SQUASH_OPTIONS that squash_options() does not use.
std::string unused_squash_words(const std::string& options) {
  std::string unused;
  const auto words = split_nonempty(options, ' ');
  for (size_t i = 0; i < words.size(); ++i) {
    const bool valued = (words[i] == "-comp" || words[i] == "-Xcompression-level");
    if (valued && i + 1 < words.size() &&
        (words[i] != "-comp" || words[i + 1] == "zstd" || words[i + 1] == "lz4" ||
         words[i + 1] == "gzip" || words[i + 1] == "xz")) {
      ++i;
      continue;
    }
    unused += (unused.empty() ? "" : " ") + words[i];
  }
  return unused;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

bool enroot_true(std::string_view value) {
  const std::string v = to_lower(value);
  return !(v.empty() || v == "n" || v == "no" || v == "f" || v == "false" || v == "0");
}

const std::vector<std::string>& enroot_standard_files() {
  static const std::vector<std::string> files = {
      "10-aptfix.sh",     "10-cgroups.sh",  "10-devices.sh",   "10-home.sh",
      "10-localtime.sh",  "10-shadow.sh",   "98-nvidia.sh",    "99-mellanox.sh",
      "50-mig-config.sh", "50-sharp.sh",    "50-slurm-pmi.sh", "50-slurm-pytorch.sh",
      "10-system.fstab",  "20-config.fstab"};
  return files;
}

std::vector<std::pair<std::string, EnrootValue>> parse_enroot_conf(std::string_view text,
                                                                   const EnvLookup& env,
                                                                   const std::string& origin) {
  std::vector<std::pair<std::string, EnrootValue>> out;
  int number = 0;
  for (const auto& raw : split(std::string(text), '\n')) {
    ++number;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    const size_t sep = line.find_first_of(" \t=");
    std::string key = line.substr(0, sep);
    if (!is_enroot_key(key) && !is_exported_key(key))
      continue;  // as Enroot: other lines are not read
    std::string value;
    if (sep != std::string::npos) {
      const size_t start = line.find_first_not_of(" \t=", sep);
      if (start != std::string::npos) value = line.substr(start);
    }
    const std::string where = origin + ":" + std::to_string(number);
    out.emplace_back(key, EnrootValue{expand_word(value, env, where + ": " + key), where, false});
  }
  return out;
}

EnrootConfig EnrootConfig::load(const EnvLookup& env) {
  EnrootConfig c;
  c.env_ = env;
  const fs::path file = c.config_file();
  std::vector<fs::path> files = {file};
  std::error_code ec;
  fs::path dropins = file;
  dropins += ".d";
  std::vector<fs::path> more;
  for (const auto& e : fs::directory_iterator(dropins, ec)) {
    if (e.path().extension() == ".conf") more.push_back(e.path());
  }
  std::sort(more.begin(), more.end());
  files.insert(files.end(), more.begin(), more.end());
  for (const auto& f : files) {
    if (!fs::is_regular_file(f, ec)) continue;
    for (auto& [key, v] : parse_enroot_conf(read_text(f), env, f.string())) {
      if (is_exported_key(key)) {
        if (!env(key)) c.exports_.emplace_back(key, v.value);
        continue;
      }
      c.values_[key] = v;
    }
  }
  // The environment wins over the files, as in Enroot; an empty variable is unset.
  std::vector<std::string> keys;
  for (const auto& [k, _] : same_meaning()) keys.push_back(k);
  for (const auto& [k, _] : without_meaning()) keys.push_back(k);
  keys.insert(keys.end(), front_end_keys().begin(), front_end_keys().end());
  for (const auto& key : keys) {
    if (auto v = env(key); v && !v->empty()) c.values_[key] = {*v, "environment", true};
  }
  return c;
}

void EnrootConfig::apply_directives(std::string_view script_text, const std::string& script_name) {
  int number = 0;
  for (const auto& raw : split(std::string(script_text), '\n')) {
    ++number;
    std::string line = trim(raw);
    if (!line.starts_with("#")) continue;
    line = trim(line.substr(1));
    if (!line.starts_with("ENROOT_")) continue;
    const size_t sep = line.find_first_of(" \t=");
    const std::string key = line.substr(0, sep);
    if (!is_enroot_key(key)) continue;
    std::string value = sep == std::string::npos ? "" : trim(line.substr(sep + 1));
    const std::string where = script_name + ":" + std::to_string(number);
    values_[key] = {expand_word(value, env_, where + ": " + key), where, false};
  }
}

void EnrootConfig::set(const std::string& key, const std::string& value,
                       const std::string& origin) {
  values_[key] = {value, origin, false};
}

std::optional<std::string> EnrootConfig::value(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second.value;
}

bool EnrootConfig::is_true(const std::string& key) const {
  auto v = value(key);
  return v && enroot_true(*v);
}

fs::path EnrootConfig::sysconf_dir() const {
  auto it = values_.find("ENROOT_SYSCONF_PATH");
  if (it != values_.end() && !it->second.value.empty()) return it->second.value;
  if (auto v = env_("ENROOT_SYSCONF_PATH"); v && !v->empty()) return *v;
  return "/etc/enroot";
}

fs::path EnrootConfig::config_dir() const {
  if (auto v = value("ENROOT_CONFIG_PATH"); v && !v->empty()) return *v;
  if (auto v = env_("XDG_CONFIG_HOME"); v && !v->empty()) return fs::path(*v) / "enroot";
  return fs::path(env_("HOME").value_or("/")) / ".config" / "enroot";
}

Settings EnrootConfig::settings() const {
  Settings s = Settings::load(SettingsSources::from_environment(env_));
  for (const auto& [key, v] : values_) {
    auto it = same_meaning().find(key);
    if (it == same_meaning().end()) continue;
    // A DEEPOPS_ variable is the runtime's own word, above Enroot's files.
    if (!v.from_environment && env_("DEEPOPS_" + it->second)) continue;
    std::string value = v.value;
    // Enroot's booleans: "n" and the like mean false, anything else true.
    if (it->second != "RUNTIME_PATH" && it->second != "CONFIG_PATH") {
      value = enroot_true(value) ? "yes" : "no";
    }
    s.set(it->second, value, v.origin + " (" + key + ")");
  }
  if (!env_("DEEPOPS_CONFIG_PATH")) s.config_path = config_dir();
  if (auto v = value("ENROOT_NATIVE_OVERLAYFS"))
    s.set("OVERLAY", enroot_true(*v) ? "auto" : "fuse", "ENROOT_NATIVE_OVERLAYFS");
  s.extra_conf_dirs = {sysconf_dir()};
  for (const auto& f : enroot_standard_files()) s.skipped_conf_files.insert(f);
  return s;
}

std::vector<EnrootNote> EnrootConfig::notes() const {
  std::vector<EnrootNote> out;
  for (const auto& [key, v] : values_) {
    if (same_meaning().count(key) || read_by_front_end(key)) continue;
    auto it = without_meaning().find(key);
    const std::string why = it != without_meaning().end()
                                ? it->second
                                : "not a setting of Enroot 4.1 or of deepops-enroot";
    out.push_back({key, v.value, v.origin, why, v.from_environment});
  }
  if (auto squash = values_.find("ENROOT_SQUASH_OPTIONS"); squash != values_.end()) {
    const std::string unused = unused_squash_words(squash->second.value);
    if (!unused.empty()) {
      out.push_back({"ENROOT_SQUASH_OPTIONS", unused, squash->second.origin,
                     "only -comp (zstd, lz4, gzip or xz) and -Xcompression-level are used, "
                     "by import and load",
                     squash->second.from_environment});
    }
  }
  return out;
}

SquashOptions EnrootConfig::squash_options() const {
  SquashOptions o;
  const auto words = split_nonempty(value("ENROOT_SQUASH_OPTIONS").value_or(""), ' ');
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "-comp" && i + 1 < words.size()) {
      const std::string& comp = words[++i];
      if (comp == "zstd" || comp == "lz4" || comp == "gzip" || comp == "xz") o.compression = comp;
    } else if (words[i] == "-Xcompression-level" && i + 1 < words.size()) {
      const std::string& level = words[++i];
      if (!level.empty() && std::all_of(level.begin(), level.end(), ::isdigit) && level.size() < 3)
        o.level = std::stoi(level);
    }
  }
  return o;
}

unsigned EnrootConfig::max_connections() const {
  const std::string v = value("ENROOT_MAX_CONNECTIONS").value_or("10");
  if (v.empty() || v.size() > 6 || !std::all_of(v.begin(), v.end(), ::isdigit)) return 10;
  return std::clamp(static_cast<unsigned>(std::stoul(v)), 1u, 32u);
}

}  // namespace deepops::enroot
