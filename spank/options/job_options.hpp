#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/mount_spec.hpp"

namespace deepops::spank {

// What a job step asked for with the Pyxis-compatible --container-* options
// (or their PYXIS_CONTAINER_* / DEEPOPS_CONTAINER_* variables). Parsing is
// here, apart from the SPANK glue, so that every rule has a unit test.
struct ContainerRequest {
  enum class NameMode { automatic, create, exec, no_exec };
  struct Name {
    std::string name;
    NameMode mode = NameMode::automatic;
  };

  std::string image;
  std::vector<MountEntry> mounts;  // a bind source may be relative until resolve_mount_sources
  std::string workdir;             // absolute: a relative one is taken from the container's "/"
  std::optional<Name> name;
  std::string save;
  std::optional<bool> mount_home;
  std::optional<bool> remap_root;
  std::optional<bool> entrypoint;
  bool entrypoint_log = false;
  std::optional<bool> writable;  // --container-writable / --container-readonly
  std::vector<std::string> env_names;
  bool unshare_net = false, unshare_ipc = false, unshare_uts = false;

  // Whether the step runs in a container at all.
  bool wants_container() const { return !image.empty() || name.has_value(); }
};

// The options, as registered with Slurm (without the leading "--").
struct OptionInfo {
  const char* name;
  const char* arginfo;  // nullptr for flags
  const char* usage;
};
const std::vector<OptionInfo>& container_options();

// Applies one option as SPANK hands it over (optarg is null for flags).
// Throws Error(invalid_argument) whose message starts with the option name;
// so does a flag whose opposite was given before (--container-writable with
// --container-readonly, --X with --no-X), as in Pyxis.
void apply_option(ContainerRequest& request, std::string_view option, const char* optarg,
                  const EnvLookup& env);

// PYXIS_CONTAINER_<NAME> (or DEEPOPS_CONTAINER_<NAME>) for every option not in
// `given`: the command line wins. Boolean variables, as Pyxis reads them:
// exactly 1/true/yes/y or 0/false/no/n, any other value ignored; ..._WRITABLE=0
// means read-only and ..._READONLY=0 writable, ..._WRITABLE winning when both
// are valid. Then relative mount sources are resolved against the job's
// working directory: env's PWD, else SLURM_SUBMIT_DIR (left relative if
// neither is an absolute path).
void apply_environment(ContainerRequest& request, const std::set<std::string>& given,
                       const EnvLookup& env);

// Makes every relative bind source ("./data", "../x") absolute from `base`.
void resolve_mount_sources(ContainerRequest& request, const std::filesystem::path& base);

// --container-mounts: SRC[:DST[:FLAGS]] entries separated by ',' (none empty),
// FLAGS joined by '+' (bind_flag_list()), fstab escapes (\040) for blanks; SRC
// is an absolute path, a relative one starting with '.' (kept relative: see
// resolve_mount_sources), "tmpfs" (mounts a tmpfs) or "umount" (removes a mount).
std::vector<MountEntry> parse_container_mounts(std::string_view value, const EnvLookup& env);

// NAME[:auto|create|exec|no_exec]
ContainerRequest::Name parse_container_name(std::string_view value);

// Checks that need the submitting user's files, done in srun/sbatch before
// anything is launched: an image given as a path, mount sources (relative
// ones resolved against `cwd` first, when still relative), the save path.
// `cwd` is the submit directory. Throws with the fix in the hint.
void validate_on_submit(ContainerRequest& request, const std::filesystem::path& cwd);

// plugstack.conf arguments: key=value; an unknown key is an error.
struct PlugstackConfig {
  std::filesystem::path runtime_path;  // empty: the runtime's default
  std::filesystem::path sysconf_dir;   // empty: /etc/deepops
  bool execute_entrypoint = false;
  bool job_scope = false;  // container_scope=job
  bool sbatch_support = true;
  // How long a node's start (the import, the hooks) may take before the step
  // fails; zero: as long as the job may run.
  std::chrono::seconds start_timeout{3600};
  // importer=PATH: Pyxis's importer protocol. `PATH get URI` (as the job's
  // user) prints the squashfs a registry image starts from, instead of the
  // runtime's import; `PATH release` runs once the node's part of the step
  // is done. Empty: the runtime's own import and cache.
  std::filesystem::path importer;
  std::vector<std::string> notes;  // ignored Pyxis keys, for the log
};
PlugstackConfig parse_plugstack_args(const std::vector<std::string>& args);

}  // namespace deepops::spank
