#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "keeper_protocol.hpp"

namespace deepops::spank {

enum class StepState { running, ended, unknown };

// What slurmctld says of a step, asked by deepops-step-state (HELPER), which
// becomes WHO first thing, with SLURM_CONF=SLURM_CONF_PATH (unset when
// empty), stdio on /dev/null and no other descriptor, killed after TIMEOUT.
// Safe to call from slurmstepd: posix_spawn, no fork (whose atfork handlers
// would run libslurm's code in the child). step_id SLURM_BATCH_SCRIPT asks
// about the job alone.
StepState ask_step_state(const std::string& helper, const std::string& slurm_conf_path,
                         const UserIdentity& who, uint32_t job_id, uint32_t step_id,
                         std::chrono::milliseconds timeout);

// The helper's exit status as a state (0 running, 3 ended, else unknown).
StepState step_state_from_exit(int wait_status);

}  // namespace deepops::spank
