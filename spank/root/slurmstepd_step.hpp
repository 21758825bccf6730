#pragma once
// slurmstepd's side of a step (user_init, task_init), as the plugin's
// callbacks use it: what Slurm says of the step, the cancel check, each
// task's environment. Root: it reads from Slurm, never from what the job's
// user can write, except the keeper's report (KeeperReport, parsed as
// untrusted).
#include <string>

#include "keeper_protocol.hpp"
#include "step_keeper.hpp"

extern "C" {
#include <slurm/spank.h>
}

namespace deepops::spank {

// The step's environment, as srun or sbatch sent it.
EnvMap job_env(spank_t sp);

// What slurmstepd knows of the step on this node (user_init).
StepInfo gather_step(spank_t sp);

// The cancel check while the keeper starts: deepops-step-state asks
// slurmctld, at most every 5 s per 64 nodes of the job.
StartWatch start_watch(spank_t sp, const StepInfo& step);

// A task's environment made the container's: the report's changes, then the
// PyTorch and PMIx variables from this task's Slurm variables.
void set_task_env(spank_t sp, const KeeperReport& report);

// Our programs: beside the plugin (a build tree, or a test lab's copy), else
// where the package installs them (libexec/deepops).
std::string libexec_program(const char* name);

}  // namespace deepops::spank
