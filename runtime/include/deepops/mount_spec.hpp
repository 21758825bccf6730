#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deepops {

// Looks up a host environment variable for ${VAR} substitution.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env_lookup();

// "${HOME}/x" -> "/home/u/x". Unknown variables expand to nothing, as in
// Enroot; `$` without a brace is kept. Throws on an unterminated "${".
std::string substitute_env(std::string_view text, const EnvLookup& env);

// One mount, as a line of an Enroot-style mounts file (fstab(5) with the
// target relative to the container root) or a --mount argument.
struct MountEntry {
  enum class Create { none, dir, file, automatic };

  std::string source;       // host path for binds; the fs name (e.g. "tmpfs") otherwise
  std::string target;       // absolute, normalised path inside the container
  std::string type;         // "none" for binds
  unsigned long flags = 0;  // MS_* beyond MS_BIND/MS_REC
  std::string data;         // filesystem options (size=, mode=, ...)
  bool bind = false;
  bool recursive = false;
  bool read_only = false;
  Create create = Create::none;
  bool move = false;    // x-move: move an existing mount instead
  bool detach = false;  // x-detach: unmount the target
  int order = 0;        // fs_passno: lower first, stable otherwise
  std::string origin;   // "file:line" or "--mount", for error messages
};

// Parses one fstab line (fields: source target [type [options [freq [passno]]]]).
// Returns nullopt for blank and comment lines.
std::optional<MountEntry> parse_mount_line(std::string_view line, const EnvLookup& env,
                                           const std::string& origin);

// The same from fields already split, substituted and unescaped.
MountEntry parse_mount_fields(const std::vector<std::string>& fields, const std::string& origin);

// fstab(5)'s octal escapes: "my\040dir" -> "my dir".
std::string decode_fstab_escapes(std::string_view field);

// Parses every line of a mounts file's text.
std::vector<MountEntry> parse_mounts_text(std::string_view text, const EnvLookup& env,
                                          const std::string& origin);

// A --mount / --container-mounts item: an fstab line when it contains blanks,
// otherwise SRC[:DST[:FLAGS]] with FLAGS joined by '+' (ro, rw, rbind, bind,
// nosuid, nodev, noexec, private, slave, x-create=...). DST defaults to SRC.
MountEntry parse_mount_argument(std::string_view arg, const EnvLookup& env);

// "/a/./b//c/" -> "/a/b/c". Throws when `path` is relative, empty or has a
// ".." component: nothing given for inside the container may climb out of it.
std::string normalize_container_path(std::string_view path, const std::string& what);

// KEY=VALUE lines (an environ file, or hook output), with ${VAR} substitution,
// optional "export " and surrounding quotes; '#' comments and blanks skipped.
std::vector<std::pair<std::string, std::string>> parse_environ_text(std::string_view text,
                                                                    const EnvLookup& env,
                                                                    const std::string& origin);

bool is_valid_env_name(std::string_view name);

}  // namespace deepops
