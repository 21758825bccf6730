#pragma once
// deepops-keeper's `start`: the container of one step on one node.
#include <string>

#include "config/settings.hpp"
#include "keeper_protocol.hpp"

namespace deepops::spank {

// Finds or imports the image, starts the container and holds it until
// SIGTERM, writing progress lines and then the report to `report_fd`
// (KeeperReport), then stops what the container left behind and exits.
// A named container already running is joined instead: the report says so
// and the keeper exits at once.
[[noreturn]] void run_start(int report_fd, const StartRequest& request);

// The admin's settings for the step's user (deepops.conf, conf.d), with
// ${HOME}, ${USER}, ${UID}, ${SLURM_JOB_ID}, ... of the step; never the job's
// environment.
Settings load_admin_settings(const StepInfo& step, const PlugstackConfig& config);

// What the keeper knows for the PMIx hook at start that Slurm only puts in
// each task's environment later: the server's folder, for --mpi=pmix*.
EnvMap pmix_hook_env(const StepInfo& step);

// The named container's name in the user's store: the name itself, or
// "job<ID>.<name>" with container_scope=job, so that the epilog finds it.
std::string stored_container_name(const std::string& name, bool job_scope,
                                  const std::string& job_id);
std::string job_scope_prefix(const std::string& job_id);

}  // namespace deepops::spank
