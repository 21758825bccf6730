#pragma once

#include <functional>
#include <optional>
#include <string>

namespace deepops::bench {

using EnvGet = std::function<std::optional<std::string>(const std::string&)>;

// Where this process sits in the run, from whoever launched it:
//   srun:   SLURM_PROCID, SLURM_NTASKS (or SLURM_STEP_NUM_TASKS), SLURM_LOCALID,
//           SLURM_STEP_TASKS_PER_NODE at SLURM_NODEID ("2(x3),1" forms);
//   mpirun: OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE}, or PMI_RANK/PMI_SIZE
//           (MPICH, Intel MPI; local rank from MPI_LOCALRANKID/MPI_LOCALNRANKS);
//   -np N:  DEEPOPS_BENCH_RANK/DEEPOPS_BENCH_SIZE, set for the forked ranks;
//   none:   a single rank.
// Open MPI is checked before Slurm: mpirun inside an allocation carries both.
struct LaunchInfo {
  std::string launcher = "single";  // local, srun, mpirun, single
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
};
// Throws std::invalid_argument when the variables contradict one another.
LaunchInfo detect_launch(const EnvGet& env);

// The node this process runs on, as the admin knows it: Slurm's node name
// (SLURMD_NODENAME) under srun, else the host name. Several Slurm nodes may
// share one host (a lab), and a node's name may differ from its host's.
std::string node_name();
// The machine itself, for what is physically shared (GPUs).
std::string host_name();

// SLURM_STEP_TASKS_PER_NODE ("2(x3),1") expanded, the count on node `node`.
int tasks_on_node(const std::string& tasks_per_node, int node);

// The first of the `gpus_per_rank` GPUs (-g) a rank drives, for both binding
// styles: when a rank sees just its own (--gpus-per-task, a CUDA_VISIBLE_DEVICES
// of its own) they start at device 0; when it sees them all, at local rank
// times gpus_per_rank. -1: the node has too few GPUs for its ranks.
int gpu_for_rank(int local_rank, int visible_gpus, int gpus_per_rank = 1);

}  // namespace deepops::bench
