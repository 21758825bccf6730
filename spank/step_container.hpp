#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "deepops/error.hpp"
#include "deepops/manifest.hpp"
#include "job_options.hpp"
#include "privileges.hpp"

namespace deepops::spank {

using EnvMap = std::map<std::string, std::string>;

// What slurmstepd knows of the step on this node, gathered in user_init.
struct StepInfo {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string job_id;
  std::string step_id;
  bool batch = false;             // the batch script's step
  std::string node;               // SLURMD_NODENAME
  EnvMap job_env;                 // the step's environment, as srun/sbatch sent it
  std::filesystem::path cwd;      // the job's working directory
  std::vector<std::string> argv;  // the step's command (the script, for batch)
  UserIdentity who;               // with the groups Slurm gave the step
  // From slurm.conf (as slurmstepd loaded it), "%n" already expanded: where
  // Slurm's PMIx plugin keeps its server folder, and the TmpFS.
  std::string slurmd_spool_dir;
  std::string tmp_fs;
};

// What the PMIx hook needs to know at container start that Slurm only puts
// in each task's environment later: the server's folder, for --mpi=pmix*.
EnvMap pmix_hook_env(const StepInfo& step);

// Changes that turn a task's environment into the container's: the image's
// ENV, environ files, hooks and --container-env, computed once per node.
struct EnvDelta {
  EnvMap set;
  std::vector<std::string> unset;
};
EnvDelta env_delta(const EnvMap& before, const EnvMap& after);

// What the keeper reports to slurmstepd once the container is ready (or why
// it is not): everything the tasks need to join it, and what the end of the
// step needs to save it.
struct KeeperReport {
  bool ok = false;
  std::string error;  // one line, with the fix when there is one
  pid_t keeper = 0;
  bool attached = false;  // joined a named container some other step runs
  std::string container;  // for messages: the image or the container's name
  std::string notice;     // for the user, e.g. what was imported
  std::string log;        // --container-entrypoint-log: the entrypoint's output
  EnvDelta env;
  std::string workdir;
  bool workdir_required = false;
  bool remap_root = false;
  bool id_call_filter = true;  // the tasks install the seccomp filter (SECCOMP_FILTER)
  ImageConfig image;
  // --container-save: the image, the layer that holds the writes, where to.
  std::filesystem::path squashfs;
  std::filesystem::path layer_dir;
  bool layer_is_temporary = false;
  std::filesystem::path save_to;
  std::filesystem::path runtime_dir;

  std::string to_json() const;
  static KeeperReport from_json(const std::string& text);
};

// RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from a task's
// Slurm variables, for images that set PYTORCH_VERSION (as Enroot's hook).
EnvMap pytorch_env(const EnvMap& task_env, const ImageConfig& image);

// Looks names up in `env` (kept by the lookup).
EnvLookup env_lookup(EnvMap env);

// The first host of a Slurm node list ("n[3-5],m1" -> "n3"), by libslurm,
// and the n-th (from 0; "" past the end).
std::string first_host(const std::string& nodelist);
std::string nth_host(const std::string& nodelist, unsigned n);

// The named container's name in the user's store: the name itself, or
// "job<ID>.<name>" with container_scope=job, so that the epilog finds it.
std::string stored_container_name(const std::string& name, bool job_scope,
                                  const std::string& job_id);
std::string job_scope_prefix(const std::string& job_id);

// Starts this node's container for the step (user_init): forks a keeper that
// becomes the job's user, imports or finds the image, and holds the
// container; returns once it is ready or has failed. Never throws: a
// failure is in the report, for task_init to show. A long import reports
// progress lines meanwhile (at most one every 2 s).
using ProgressSink = std::function<void(const std::string&)>;
// The keeper's pipe carries progress lines ({"progress": "..."}), then its
// report: reads `fd` to its end, hands each progress line to `progress`,
// and returns the report's text.
std::string read_report(int fd, const ProgressSink& progress);
// The same, but while it waits asks `cancelled` every `every` (and never
// more often): returns nullopt, without the rest of the pipe, once it says so.
std::optional<std::string> read_report_until(int fd, const ProgressSink& progress,
                                             const std::function<bool()>& cancelled,
                                             std::chrono::milliseconds every);

// Whether the step's job is still wanted: asked while the keeper imports and
// starts (user_init), at most every StartWatch::every. Slurm does not tell
// slurmstepd of a cancel before user_init returns (spank/README.md), so it is
// slurmctld that is asked. Empty: never asked.
struct StartWatch {
  std::function<bool()> cancelled;
  std::chrono::milliseconds every{5000};
};

// Once `watch` says that the job was cancelled, the keeper's process group
// (the keeper, its import, its hooks) is stopped, SIGTERM then SIGKILL, and
// the report says so: the import leaves no scratch and publishes nothing.
KeeperReport start_step_container(const ContainerRequest& request, const PlugstackConfig& config,
                                  const StepInfo& step, const ProgressSink& progress = {},
                                  const StartWatch& watch = {});

// Stops the keeper (slurm_spank_exit), then writes --container-save as the
// user. Returns the messages worth logging.
std::vector<std::string> stop_step_container(const KeeperReport& report, const StepInfo& step);

// Removes the user's job-scoped named containers of a finished job (epilog).
// `node` is this node's Slurm name (SLURMD_NODENAME in the epilog).
std::vector<std::string> remove_job_containers(uid_t uid, gid_t gid, const std::string& job_id,
                                               const std::string& node,
                                               const PlugstackConfig& config);

}  // namespace deepops::spank
