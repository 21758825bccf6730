#pragma once
// The plugin's side of a step's container, in slurmstepd (and of the job's
// clean-up, in slurmd's epilog): deepops-keeper does the work, as the job's
// user; this side starts it (spawn_keeper), hands it the request, reads its
// report within bounds, and stops it.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "job_options.hpp"
#include "keeper_protocol.hpp"

namespace deepops::spank {

// Whether the step's job is still wanted: asked while the keeper imports and
// starts (user_init), at most every StartWatch::every. Slurm does not tell
// slurmstepd of a cancel before user_init returns (spank/README.md), so it is
// slurmctld that is asked. Empty: never asked.
struct StartWatch {
  std::function<bool()> cancelled;
  std::chrono::milliseconds every{5000};
};

// Starts this node's container for the step (user_init) and returns once it
// is ready or has failed; never throws: a failure is in the report, for
// task_init to show. Progress lines go to `progress` meanwhile. Once `watch`
// says the job was cancelled, or the start outlasts config.start_timeout, or
// the keeper writes more than the report's limit, the keeper is stopped
// (SIGTERM, then SIGKILL after 10 s: it stops what it started) and reaped.
KeeperReport start_step_container(const std::string& keeper, const ContainerRequest& request,
                                  const PlugstackConfig& config, const StepInfo& step,
                                  const ProgressSink& progress = {}, const StartWatch& watch = {},
                                  const ReadLimits& limits = {});

// Stops the keeper (slurm_spank_exit, or task_exit with --container-save),
// the child forked and nothing else, then has a keeper save the container
// as the user. Returns the messages worth logging.
std::vector<std::string> stop_step_container(const std::string& keeper, const KeeperReport& report,
                                             const StepInfo& step);

// With plugstack.conf importer=, has a keeper run `importer release` as the
// user once the node's part of the step is done (the keeper skips images the
// importer did not give, such as squashfs files); not for a step that only
// joined a running container. Returns the messages worth logging.
std::vector<std::string> release_step_image(const std::string& keeper, const KeeperReport& report,
                                            const ContainerRequest& request,
                                            const PlugstackConfig& config, const StepInfo& step);

// Removes the user's job-scoped named containers of a finished job (epilog).
std::vector<std::string> remove_job_containers(const std::string& keeper, const UserIdentity& who,
                                               const std::string& job_id, const std::string& node,
                                               const PlugstackConfig& config);

}  // namespace deepops::spank
