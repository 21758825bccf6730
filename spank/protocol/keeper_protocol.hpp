#pragma once
// What the plugin (root, in slurmstepd or slurmd) and deepops-keeper (the
// job's user, exec'd by it) say to each other, and nothing else: the
// request, as one JSON document on the keeper's fd 3; progress lines and
// one report, as JSON lines on its fd 4. Both sides link this file; it needs
// nlohmann-json and no other library, so that the plugin stays thin.
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "job_options.hpp"
#include "util/unique_fd.hpp"

namespace deepops::spank {

using EnvMap = std::map<std::string, std::string>;

// The keeper's descriptors, as the root side sets them before the exec.
inline constexpr int kRequestFd = 3;
inline constexpr int kReportFd = 4;

// Who a step's processes run as: the job's user, with the groups Slurm gave
// the step.
struct UserIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// `j` as one line of text. Strings that are not UTF-8 (a job's variable may
// hold any bytes) have their bad bytes replaced by U+FFFD instead of failing
// the dump: a value the keeper passes on unchanged never reaches the tasks
// through it (EnvDelta holds what the container changed).
std::string dump_text(const nlohmann::json& j);

// An exception as the user reads it: an Error's message and hint, else
// "internal error: " and what it says. Root code catches every exception:
// none may reach slurmstepd or srun.
std::string describe_exception(const std::exception& e);

// Looks names up in `env` (kept by the lookup).
EnvLookup env_lookup(EnvMap env);

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

// Changes that turn a task's environment into the container's: the image's
// ENV, environ files, hooks and --container-env, computed once per node.
struct EnvDelta {
  EnvMap set;
  std::vector<std::string> unset;
};
EnvDelta env_delta(const EnvMap& before, const EnvMap& after);

// What the keeper reports once the container is ready (or why it is not):
// everything the tasks need to join it, and what the end of the step needs
// to save it. Written by the job's user's process: read as untrusted.
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
  bool pytorch = false;        // the image sets PYTORCH_VERSION (pytorch_env)
  // --container-save: the image, its config (passed back to the keeper that
  // saves, never read by the plugin), the layer that holds the writes, where to.
  std::filesystem::path squashfs;
  nlohmann::json image = nlohmann::json::object();
  std::filesystem::path layer_dir;
  bool layer_is_temporary = false;
  std::filesystem::path save_to;
  std::filesystem::path runtime_dir;
  // How the layer was written ("auto", "kernel", "fuse"): the export reads
  // it back the same way.
  std::string overlay = "auto";
  // The plugin's own: a pidfd of the keeper it forked (where the kernel has
  // them), so that the step's end signals that process even if something
  // reaped it and its pid was reused. Not in the JSON.
  std::shared_ptr<const UniqueFd> keeper_pidfd;

  std::string to_json() const;
  static KeeperReport from_json(const std::string& text);
};

// The keeper's actions (its first argument).
inline constexpr const char* kStartAction = "start";
inline constexpr const char* kSaveAction = "save";
inline constexpr const char* kRemoveJobAction = "remove-job-containers";
// `importer release` (Pyxis's importer protocol), once the step's container
// on the node is done; its request is the step's StartRequest.
inline constexpr const char* kReleaseAction = "release";

// The request of `deepops-keeper start`.
struct StartRequest {
  ContainerRequest request;
  PlugstackConfig config;
  StepInfo step;
};
std::string to_json(const StartRequest& r);
StartRequest start_request_from_json(const std::string& text);  // throws Error

// The request of `deepops-keeper save`: the start's report.
// The request of `deepops-keeper remove-job-containers`:
struct RemoveJobRequest {
  std::string job_id;
  std::string node;
  PlugstackConfig config;
};
std::string to_json(const RemoveJobRequest& r);
RemoveJobRequest remove_job_request_from_json(const std::string& text);  // throws Error

// The answer of `save` and `remove-job-containers`: lines worth logging, or
// an error.
struct KeeperLog {
  bool ok = false;
  std::string error;
  std::vector<std::string> lines;
  std::string to_json() const;
  static KeeperLog from_json(const std::string& text);
};

// How much of the keeper's pipe root reads, and for how long.
struct ReadLimits {
  // A report: the environment the container changes (within the kernel's
  // limit for exec's, 2 MiB by default), the entrypoint's log (its last
  // 64 KiB), the image's config.
  size_t max_line = 8u << 20;
  // From the start of the read; zero: no deadline.
  std::chrono::milliseconds deadline{0};
};

// Reads the keeper's pipe: hands each progress line ({"progress": "..."})
// to `progress`, and returns the first line that is not one, the report,
// without waiting for the pipe's end (a process the keeper left behind may
// hold it open). While it waits it asks `cancelled` every `every`.
struct ReadOutcome {
  enum class Ended { report, eof, cancelled, too_large, deadline } how = Ended::eof;
  std::string report;  // the report's line (Ended::report)
};
using ProgressSink = std::function<void(const std::string&)>;
ReadOutcome read_keeper_pipe(int fd, const ProgressSink& progress,
                             const std::function<bool()>& cancelled,
                             std::chrono::milliseconds every, const ReadLimits& limits = {});

// A JSON document written whole to `fd`; false once the deadline passes
// or the reader is gone (the keeper died), never an exception.
bool write_document(int fd, const std::string& text, std::chrono::milliseconds deadline);

}  // namespace deepops::spank
