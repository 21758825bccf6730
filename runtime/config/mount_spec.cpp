#include "config/mount_spec.hpp"

#include <sys/mount.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops {
namespace {

Error bad(const std::string& origin, const std::string& message, std::string hint = {}) {
  return Error(Errc::invalid_argument, origin + ": " + message, std::move(hint));
}

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  std::string field;
  while (in >> field) out.push_back(field);
  return out;
}

// Every line, empty ones included, so that line numbers are right.
std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// substitute_env, with the place named in its errors.
std::string substitute_at(std::string_view text, const EnvLookup& env, const std::string& origin) {
  try {
    return substitute_env(text, env);
  } catch (const Error& e) {
    throw Error(e.code(), origin + ": " + e.what(), e.hint());
  }
}

// Enroot's mount options (bin/enroot-mount.c), which Pyxis hands over as
// given: what each sets and clears. Per-mount flags (nosuid, nodev, noexec,
// ro and the atime ones) apply to binds too; the filesystem-wide ones (sync,
// mand, iversion, lazytime, ...) only to new filesystems such as tmpfs: on a
// bind the kernel ignores them, as it does under Enroot.
struct FlagWord {
  unsigned long set;
  unsigned long clear;
};
const std::map<std::string, FlagWord>& flag_words() {
  static const std::map<std::string, FlagWord> words = {
      {"nosuid", {MS_NOSUID, 0}},
      {"suid", {0, MS_NOSUID}},
      {"nodev", {MS_NODEV, 0}},
      {"dev", {0, MS_NODEV}},
      {"noexec", {MS_NOEXEC, 0}},
      {"exec", {0, MS_NOEXEC}},
      {"noatime", {MS_NOATIME, 0}},
      {"atime", {0, MS_NOATIME}},
      {"nodiratime", {MS_NODIRATIME, 0}},
      {"diratime", {0, MS_NODIRATIME}},
      {"relatime", {MS_RELATIME, 0}},
      {"norelatime", {0, MS_RELATIME}},
      {"strictatime", {MS_STRICTATIME, 0}},
      {"nostrictatime", {0, MS_STRICTATIME}},
      {"sync", {MS_SYNCHRONOUS, 0}},
      {"async", {0, MS_SYNCHRONOUS}},
      {"dirsync", {MS_DIRSYNC, 0}},
      {"mand", {MS_MANDLOCK, 0}},
      {"nomand", {0, MS_MANDLOCK}},
      {"iversion", {MS_I_VERSION, 0}},
      {"noiversion", {0, MS_I_VERSION}},
      {"lazytime", {MS_LAZYTIME, 0}},
      {"nolazytime", {0, MS_LAZYTIME}},
      {"silent", {MS_SILENT, 0}},
      {"loud", {0, MS_SILENT}},
      // fstab(5) words with no effect on a mount(2) call.
      {"defaults", {0, 0}},
      {"auto", {0, 0}},
      {"noauto", {0, 0}},
      {"user", {0, 0}},
      {"users", {0, 0}},
      {"nouser", {0, 0}},
      {"nousers", {0, 0}},
      {"owner", {0, 0}},
      {"noowner", {0, 0}},
      {"group", {0, 0}},
      {"nogroup", {0, 0}},
  };
  return words;
}

// Propagation words: the type, and whether the word is the recursive form.
struct PropagationWord {
  unsigned long type;
  bool recursive;
};
const std::map<std::string, PropagationWord>& propagation_words() {
  static const std::map<std::string, PropagationWord> words = {
      {"shared", {MS_SHARED, false}},         {"rshared", {MS_SHARED, true}},
      {"slave", {MS_SLAVE, false}},           {"rslave", {MS_SLAVE, true}},
      {"private", {MS_PRIVATE, false}},       {"rprivate", {MS_PRIVATE, true}},
      {"unbindable", {MS_UNBINDABLE, false}}, {"runbindable", {MS_UNBINDABLE, true}},
  };
  return words;
}

MountEntry::Create parse_create(const std::string& value, const std::string& origin) {
  if (value == "dir") return MountEntry::Create::dir;
  if (value == "file") return MountEntry::Create::file;
  if (value == "auto") return MountEntry::Create::automatic;
  throw bad(origin, "unknown x-create value '" + value + "'", "use x-create=dir, file or auto");
}

void apply_option(MountEntry& m, const std::string& opt, std::string& data) {
  if (opt == "bind" || opt == "rbind") {
    m.bind = true;
    m.recursive = opt == "rbind";
  } else if (opt == "ro" || opt == "rw") {
    m.read_only = opt == "ro";
  } else if (opt.starts_with("x-create=")) {
    m.create = parse_create(opt.substr(9), m.origin);
  } else if (opt == "x-create") {
    m.create = MountEntry::Create::automatic;
  } else if (opt == "x-move") {
    m.move = true;
  } else if (opt == "x-detach") {
    m.detach = true;
  } else if (opt == "nofail") {
    m.nofail = true;
  } else if (opt == "remount") {
    throw bad(m.origin, "mount flag 'remount' is not supported",
              "a container mount is always a new one; give its flags (ro, nosuid, ...) instead");
  } else if (auto it = flag_words().find(opt); it != flag_words().end()) {
    m.flags = (m.flags | it->second.set) & ~it->second.clear;
  } else if (auto p = propagation_words().find(opt); p != propagation_words().end()) {
    m.propagation |= p->second.type;
    if (p->second.recursive) m.propagation_recursive |= p->second.type;
  } else if (opt.starts_with("x-")) {
    throw bad(m.origin, "unknown mount option '" + opt + "'",
              "the extensions are x-create=dir|file|auto, x-move and x-detach");
  } else {
    data += (data.empty() ? "" : ",") + opt;  // filesystem-specific, e.g. size=1G
  }
}

// Types a user namespace may mount: anything else is refused here with a
// clear message rather than with the kernel's EPERM.
bool is_allowed_type(const std::string& type) {
  return type == "none" || type == "bind" || type == "tmpfs" || type == "devpts" ||
         type == "mqueue";
}

void finish_entry(MountEntry& m, const std::string& options, bool relative_source = false) {
  std::string data;
  for (const auto& opt : split_nonempty(options, ',')) apply_option(m, opt, data);
  if (m.type == "bind") m.type = "none";
  if (m.type == "none" && !m.move && !m.detach) m.bind = true;
  if (!is_allowed_type(m.type)) {
    throw bad(m.origin, "filesystem type '" + m.type + "' cannot be mounted by a user",
              "use a bind mount of a host path, or tmpfs");
  }
  m.target = normalize_container_path(m.target, m.origin + ": target");
  if (m.target == "/" && !m.detach) {
    throw bad(m.origin, "cannot mount over the container's root", "choose a folder inside it");
  }
  if (m.bind) {
    bool relative_ok = relative_source && m.source.starts_with('.');
    if (m.source.empty() || (m.source[0] != '/' && !relative_ok)) {
      throw bad(m.origin, "bind source '" + m.source + "' is not an absolute host path",
                "write the full path, e.g. ${HOME}/data");
    }
    if (!data.empty()) {
      auto first = data.substr(0, data.find(','));
      throw bad(m.origin, "unknown mount flag '" + first + "' for a bind mount",
                "the flags are " + bind_flag_list());
    }
  }
  m.data = data;
}

}  // namespace

bool is_valid_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string substitute_env(std::string_view text, const EnvLookup& env) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = text.find('}', i + 2);
      if (end == std::string_view::npos) {
        throw Error(Errc::invalid_argument, "unterminated '${' in '" + std::string(text) + "'",
                    "close it with '}'");
      }
      std::string name(text.substr(i + 2, end - i - 2));
      if (!is_valid_env_name(name)) {
        throw Error(Errc::invalid_argument, "invalid variable name '${" + name + "}'");
      }
      if (auto v = env(name)) out += *v;
      i = end + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string normalize_container_path(std::string_view path, const std::string& what) {
  if (path.empty() || path[0] != '/') {
    throw Error(Errc::invalid_argument,
                what + " '" + std::string(path) + "' is not an absolute path",
                "paths inside the container start with '/'");
  }
  std::string out;
  for (const auto& part : split_nonempty(path, '/')) {
    if (part == ".") continue;
    if (part == "..") {
      throw Error(Errc::invalid_argument, what + " '" + std::string(path) + "' contains '..'",
                  "give the path without '..'");
    }
    out += "/" + part;
  }
  return out.empty() ? "/" : out;
}

std::string decode_fstab_escapes(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    bool octal = field[i] == '\\' && field.size() - i >= 4;
    if (octal && field[i + 1] >= '0' && field[i + 1] <= '3' && field[i + 2] >= '0' &&
        field[i + 2] <= '7' && field[i + 3] >= '0' && field[i + 3] <= '7') {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

const std::string& bind_flag_list() {
  static const std::string list = [] {
    std::string out =
        "ro, rw, bind, rbind, shared, rshared, slave, rslave, private, rprivate, unbindable, "
        "runbindable, nofail, x-create=dir|file|auto";
    for (const auto& [word, what] : flag_words()) out += ", " + word;
    return out;
  }();
  return list;
}

bool is_relative_source(const MountEntry& m) {
  return m.bind && !m.source.empty() && m.source[0] != '/';
}

void resolve_relative_source(MountEntry& m, const std::string& base) {
  if (!is_relative_source(m)) return;
  if (base.empty() || base[0] != '/') {
    throw bad(m.origin, "cannot resolve the relative source '" + m.source + "'",
              "the working directory '" + base + "' is not an absolute path");
  }
  std::string out = base;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  for (const auto& part : split_nonempty(m.source, '/')) {
    if (part == ".") continue;
    out += (out == "/" ? "" : "/") + part;
  }
  m.source = out;
}

MountEntry parse_mount_fields(const std::vector<std::string>& fields, const std::string& origin,
                              bool relative_source) {
  if (fields.empty()) throw bad(origin, "empty mount");
  if (fields.size() > 6) throw bad(origin, "too many fields", "fstab lines have at most 6");
  MountEntry m;
  m.origin = origin;
  m.source = fields[0];
  m.target = fields.size() >= 2 ? fields[1] : fields[0];
  if (fields.size() >= 3) {
    m.type = fields[2];
  } else {
    m.type = m.source == "tmpfs" ? "tmpfs" : "none";
  }
  // "/proc /proc rbind": the type field holds the options.
  std::string options = fields.size() >= 4 ? fields[3] : "";
  if (m.type == "rbind" || m.type == "bind") {
    options = m.type + (options.empty() ? "" : "," + options);
    m.type = "none";
  }
  if (fields.size() == 6) {
    size_t used = 0;
    try {
      m.order = std::stoi(fields[5], &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != fields[5].size()) {
      throw bad(origin, "fs_passno '" + fields[5] + "' is not a number");
    }
  }
  finish_entry(m, options, relative_source);
  return m;
}

std::optional<MountEntry> parse_mount_line(std::string_view line, const EnvLookup& env,
                                           const std::string& origin) {
  auto fields = split_fields(line);
  if (fields.empty() || fields[0][0] == '#') return std::nullopt;
  for (auto& f : fields) f = decode_fstab_escapes(substitute_at(f, env, origin));
  return parse_mount_fields(fields, origin);
}

std::vector<MountEntry> parse_mounts_text(std::string_view text, const EnvLookup& env,
                                          const std::string& origin) {
  std::vector<MountEntry> out;
  int number = 0;
  for (const auto& line : lines_of(text)) {
    ++number;
    auto m = parse_mount_line(line, env, origin + ":" + std::to_string(number));
    if (m) out.push_back(std::move(*m));
  }
  return out;
}

MountEntry parse_mount_argument(std::string_view arg, const EnvLookup& env) {
  const std::string origin = "mount '" + std::string(arg) + "'";
  if (arg.find_first_of(" \t") != std::string_view::npos) {
    auto m = parse_mount_line(arg, env, origin);
    if (!m) throw bad(origin, "empty mount");
    return *m;
  }
  std::vector<std::string> parts;
  std::string expanded = substitute_at(arg, env, origin);
  for (size_t start = 0;;) {  // empty parts kept: ":/etc" must not become "/etc"
    size_t colon = expanded.find(':', start);
    parts.push_back(expanded.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() > 3) throw bad(origin, "expected SRC[:DST[:FLAGS]]", "e.g. /data:/data:ro");
  const char* kUnset = "an unset ${VAR} expands to nothing; e.g. /data:/data:ro";
  if (parts[0].empty()) throw bad(origin, "SRC of SRC[:DST[:FLAGS]] (the source) is empty", kUnset);
  if (parts.size() >= 2 && parts[1].empty())
    throw bad(origin, "DST of SRC[:DST[:FLAGS]] (the target) is empty", kUnset);
  if (parts.size() == 3 && parts[2].empty())
    throw bad(origin, "FLAGS of SRC[:DST[:FLAGS]] are empty", kUnset);
  MountEntry m;
  m.origin = origin;
  m.source = parts[0];
  m.target = parts.size() >= 2 ? parts[1] : parts[0];
  m.type = "none";
  m.recursive = true;
  m.create = MountEntry::Create::automatic;
  std::string options = "rbind";
  if (parts.size() == 3) {
    for (const auto& flag : split_nonempty(parts[2], '+')) options += "," + flag;
  }
  finish_entry(m, options);
  return m;
}

std::vector<std::pair<std::string, std::string>> parse_environ_text(std::string_view text,
                                                                    const EnvLookup& env,
                                                                    const std::string& origin) {
  std::vector<std::pair<std::string, std::string>> out;
  int number = 0;
  for (const auto& raw : lines_of(text)) {
    ++number;
    std::string_view line = raw;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
      line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    if (line.starts_with("export ")) line.remove_prefix(7);
    const std::string where = origin + ":" + std::to_string(number);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || !is_valid_env_name(line.substr(0, eq))) {
      throw bad(where, "expected NAME=VALUE, got '" + std::string(line) + "'");
    }
    std::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    out.emplace_back(std::string(line.substr(0, eq)), substitute_at(value, env, where));
  }
  return out;
}

}  // namespace deepops
