#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/settings.hpp"
#include "util/env_lookup.hpp"

// Enroot's configuration, as deepops-enroot reads it: enroot.conf and
// enroot.conf.d/*.conf in ENROOT_SYSCONF_PATH, the ENROOT_* variables,
// and the #ENROOT_* directives of a --conf script, each mapped onto the
// runtime's Settings where it means the same thing, and noted where it
// cannot mean anything here.
namespace deepops::enroot {

// One ENROOT_* value and where it came from ("/etc/enroot/enroot.conf:3",
// "environment", "CONF:2 (#ENROOT_ directive)").
struct EnrootValue {
  std::string value;
  std::string origin;
  bool from_environment = false;
};

// A setting Enroot has that means nothing here, and why: `info` shows them
// all; those from the environment are also said on stderr.
struct EnrootNote {
  std::string key;
  std::string value;
  std::string origin;
  std::string why;
  bool from_environment = false;
};

// The lines of an enroot.conf: "KEY VALUE" or "KEY=VALUE", where VALUE is
// a shell word: quotes removed, $VAR and ${VAR} expanded from `env` (as
// Enroot's `eval echo` does). Only the keys Enroot reads: ENROOT_*,
// NVIDIA_*, MELLANOX_*, SSL_CERT_DIR/FILE and the proxy variables. Throws
// on a command substitution, which is not run, naming `origin:line`.
std::vector<std::pair<std::string, EnrootValue>> parse_enroot_conf(std::string_view text,
                                                                   const EnvLookup& env,
                                                                   const std::string& origin);

// Enroot's boolean: empty and n/no/f/false (any case) are false.
bool enroot_true(std::string_view value);

struct SquashOptions {
  std::string compression;  // zstd, lz4, gzip, xz; empty: the default
  int level = 0;            // 0: the default
};

class EnrootConfig {
 public:
  // enroot.conf, its .d folder, then the environment (which wins, as in
  // Enroot). `env` also expands the files' $VAR.
  static EnrootConfig load(const EnvLookup& env);

  // A --conf script's #ENROOT_KEY=VALUE lines, above everything else.
  void apply_directives(std::string_view script_text, const std::string& script_name);
  // A flag's word (start -r, -w, --net...), above everything.
  void set(const std::string& key, const std::string& value, const std::string& origin);

  // The runtime's Settings with Enroot's values applied: the site's and
  // the user's deepops.conf, then enroot.conf, then the variables. The
  // folders of mounts.d, environ.d and hooks.d are /etc/deepops's, then
  // ENROOT_SYSCONF_PATH's, then ENROOT_CONFIG_PATH's; Enroot's own standard
  // hooks and mounts are skipped there (native hooks do their work).
  Settings settings() const;

  std::optional<std::string> value(const std::string& key) const;
  bool is_true(const std::string& key) const;
  const std::map<std::string, EnrootValue>& values() const { return values_; }
  // The non-ENROOT variables of the files (NVIDIA_*, proxies...) that the
  // environment does not already set, for the front end to export.
  const std::vector<std::pair<std::string, std::string>>& exports() const { return exports_; }
  std::vector<EnrootNote> notes() const;

  std::filesystem::path sysconf_dir() const;
  std::filesystem::path config_file() const { return sysconf_dir() / "enroot.conf"; }
  std::filesystem::path config_dir() const;  // ENROOT_CONFIG_PATH: .credentials, mounts.d...
  SquashOptions squash_options() const;      // from ENROOT_SQUASH_OPTIONS
  unsigned max_connections() const;          // 1 to 32, from ENROOT_MAX_CONNECTIONS

 private:
  EnvLookup env_;
  std::map<std::string, EnrootValue> values_;
  std::vector<std::pair<std::string, std::string>> exports_;
};

// The file names of Enroot's standard hooks and mounts: what the runtime's
// native hooks already do (GPUs, InfiniBand, PMIx, home, users, /dev...).
const std::vector<std::string>& enroot_standard_files();

}  // namespace deepops::enroot
