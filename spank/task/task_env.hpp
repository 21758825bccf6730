#pragma once
// Variables each task gets from its own Slurm variables, in task_init.
#include <string>

#include "keeper_protocol.hpp"

namespace deepops::spank {

// RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from a task's
// Slurm variables, for images that set PYTORCH_VERSION (as Enroot's hook).
EnvMap pytorch_env(const EnvMap& task_env, bool pytorch_image);

// The first host of a Slurm node list ("n[3-5],m1" -> "n3"), by libslurm,
// and the n-th (from 0; "" past the end).
std::string first_host(const std::string& nodelist);
std::string nth_host(const std::string& nodelist, unsigned n);

}  // namespace deepops::spank
