#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/mount_spec.hpp"
#include "config/overlay_kind.hpp"
#include "config/values.hpp"
#include "image/layer_merge.hpp"

namespace deepops {

// What Settings::load reads, as the front end allows it.
struct SettingsSources {
  // ${VAR} in the files, and HOME and XDG_* for the default paths.
  EnvLookup vars;
  // The site's folder (deepops.conf, conf.d, mounts.d, ...).
  std::filesystem::path sysconf_dir = "/etc/deepops";
  // DEEPOPS_<KEY> and ENROOT_<KEY> from `vars`: the CLI reads them; the
  // keeper does not (a job's variables must not move the cache, the
  // runtime folder or the mirrors policy, as under Pyxis and Enroot).
  bool environment = true;
  // CONFIG_PATH/deepops.conf, the user's own file (the CLI's).
  bool user_file = true;

  // The command line's: everything, from the process's variables (the site
  // folder from DEEPOPS_SYSCONF_DIR).
  static SettingsSources from_environment(const EnvLookup& env);
};

// Runtime configuration, resolved once, lowest precedence first:
//   1. built-in defaults
//   2. SYSCONF_DIR/deepops.conf (default /etc/deepops)
//   3. SYSCONF_DIR/conf.d/*.conf, in name order
//   4. the user's CONFIG_PATH/deepops.conf (~/.config/deepops), if allowed
//   5. the environment: DEEPOPS_<KEY>, or ENROOT_<KEY> where it means the
//      same, if allowed
//   6. the command line: the front end calls set() with the flag's name
// Files hold "KEY value" or "KEY=value" lines with ${VAR} substitution; KEY is
// written with either prefix. Values follow one grammar (config/values.hpp);
// a bad one is an error naming its source. conf/README.md lists every key.
struct Settings {
  std::filesystem::path sysconf_dir = "/etc/deepops";
  std::filesystem::path runtime_path;  // per-start scratch folders
  std::filesystem::path cache_path;    // imported images
  std::filesystem::path data_path;     // named containers
  std::filesystem::path config_path;   // the user's: .credentials, mounts.d, environ.d
  // More site folders of mounts.d, environ.d and hooks.d, read after
  // sysconf_dir's and before config_path's (deepops-enroot: /etc/enroot).
  std::vector<std::filesystem::path> extra_conf_dirs;
  // File names skipped in those folders (deepops-enroot: Enroot's standard
  // hooks and mounts, whose work the native hooks do).
  std::set<std::string> skipped_conf_files;
  bool mount_home = false;
  bool remap_root = false;
  bool rootfs_writable = false;
  bool restrict_dev = false;
  bool seccomp_filter = true;  // fake success for set*id/chown calls (Enroot's filter)
  OverlayKind overlay = OverlayKind::automatic;  // OVERLAY: auto, kernel or fuse
  // Folders searched for the NVIDIA driver's libraries (colon-separated);
  // empty: the host's ld.so cache and the usual folders.
  std::vector<std::string> driver_library_dirs;
  // Where the native hooks see the host ("/"); tests use a fixture tree.
  std::filesystem::path host_root = "/";
  // Slurm's TmpFS, for the PMIx hook ("%n": the node name).
  std::string slurm_tmpfs = "/tmp";
  // Imports that the SPANK plugin runs: registries (host:port) reached over
  // plain HTTP ("*": any), and a CA bundle trusted besides the system's.
  std::vector<std::string> allow_http;
  std::string ca_file;
  // Read-only image caches an admin filled (SYSTEM_CACHE, colon-separated),
  // looked in before the user's own: pre-staged images are never fetched.
  std::vector<std::filesystem::path> system_caches;
  // MIRRORS_CONFIG: the registry mirrors file (default SYSCONF_DIR/mirrors.json).
  std::filesystem::path mirrors_config;
  // IMPORT_MAX_SIZE, IMPORT_MAX_ENTRIES: what one image may unpack to.
  MergeLimits import_limits;
  // IMAGE_MOUNT_LINGER: how long an image's shared mount outlives the last
  // container using it (seconds); 0: each container mounts its own.
  std::chrono::seconds image_mount_linger{10};

  // Where each key's value came from ("default", "/etc/deepops/deepops.conf:3",
  // "environment (ENROOT_REMAP_ROOT)"), for `deepops-ctr config`.
  std::map<std::string, std::string> origin;

  static Settings load(const SettingsSources& sources);

  // mounts.d/*.fstab and environ.d/*.env: the system's, then the user's.
  std::vector<MountEntry> load_mounts(const EnvLookup& env) const;
  std::vector<std::pair<std::string, std::string>> load_environ(const EnvLookup& env) const;
  // hooks.d: executables in name order, the system's then the user's.
  std::vector<std::filesystem::path> hooks() const;

  // Applies one KEY=value (prefix stripped); throws on an unknown key or a
  // bad value, naming `origin` (file:line, the variable, or the flag).
  void set(const std::string& key, const std::string& value, const std::string& origin);
};

}  // namespace deepops
