#pragma once

#include <functional>
#include <string>

#include "launch.hpp"

namespace deepops::bench {

// Where rank 0 listens, HOST:PORT, when no --rendezvous is given:
//   MASTER_ADDR[:MASTER_PORT, default 29400], as torchrun has it;
//   under srun, the first node of SLURM_STEP_NODELIST (rank 0's, by Slurm's
//   block distribution) and a port from the job and step ids, so that two
//   steps on one node do not meet at the same port;
//   otherwise 127.0.0.1:29400.
// `first_host` expands a Slurm hostlist and returns its first name.
std::string default_rendezvous(const LaunchInfo& where, const EnvGet& env,
                               const std::function<std::string(const std::string&)>& first_host);

// The first host of a Slurm hostlist ("n[3-5],gpu1" -> "n3"), by libslurm's
// own hostlist code, loaded at run time. Throws SetupError when libslurm is
// not there.
std::string slurm_first_host(const std::string& hostlist);

// A node name as an address this host can connect to: the name itself when
// it resolves, else Slurm's NodeAddr for it (scontrol). Throws SetupError.
std::string reachable_address(const std::string& node);

}  // namespace deepops::bench
