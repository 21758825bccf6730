#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/env_lookup.hpp"

namespace deepops {

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
  unsigned long flags = 0;  // MS_* beyond MS_BIND/MS_REC and the propagation types
  std::string data;         // filesystem options (size=, mode=, ...)
  bool bind = false;
  bool recursive = false;
  bool read_only = false;
  Create create = Create::none;
  bool move = false;    // x-move: move an existing mount instead
  bool detach = false;  // x-detach: unmount the target
  // Propagation, set after the mount by one mount(2) call per type, in the
  // order shared, slave, private, unbindable (as Enroot): the MS_SHARED,
  // MS_SLAVE, MS_PRIVATE and MS_UNBINDABLE asked for, and those of them asked
  // in their recursive form (rshared, rslave, rprivate, runbindable).
  unsigned long propagation = 0;
  unsigned long propagation_recursive = 0;
  bool nofail = false;  // nofail: a mount that fails is skipped
  int order = 0;        // fs_passno: lower first, stable otherwise
  std::string origin;   // "file:line" or "--mount", for error messages
};

// Parses one fstab line (fields: source target [type [options [freq [passno]]]]).
// Returns nullopt for blank and comment lines.
std::optional<MountEntry> parse_mount_line(std::string_view line, const EnvLookup& env,
                                           const std::string& origin);

// The same from fields already split, substituted and unescaped. With
// `relative_source`, a bind source starting with '.' ("./data", "../x") is
// kept as given, for the caller to resolve (see is_relative_source).
MountEntry parse_mount_fields(const std::vector<std::string>& fields, const std::string& origin,
                              bool relative_source = false);

// A bind source that parse_mount_fields kept relative.
bool is_relative_source(const MountEntry& m);

// Makes a relative bind source absolute: `base` (absolute) joined in front,
// "." and empty components dropped; ".." is kept for the kernel to resolve,
// as a relative path given to mount(2) would be. Other entries are unchanged.
void resolve_relative_source(MountEntry& m, const std::string& base);

// The flags a bind mount accepts (FLAGS of SRC:DST:FLAGS, or fstab options),
// as one line for messages: Enroot's (and so Pyxis's) list.
const std::string& bind_flag_list();

// fstab(5)'s octal escapes: "my\040dir" -> "my dir".
std::string decode_fstab_escapes(std::string_view field);

// Parses every line of a mounts file's text.
std::vector<MountEntry> parse_mounts_text(std::string_view text, const EnvLookup& env,
                                          const std::string& origin);

// A --mount / --container-mounts item: an fstab line when it contains blanks,
// otherwise SRC[:DST[:FLAGS]] with FLAGS joined by '+' (see bind_flag_list()).
// DST defaults to SRC.
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
