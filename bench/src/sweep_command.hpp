#pragma once

#include <string>
#include <vector>

namespace deepops::bench {

// deepops-bench sweep's options.
struct SweepArgs {
  std::string nodes;  // a Slurm hostlist; default: the allocation's
  std::string size = "64M";
  std::string backend = "nccl", nccl_library;
  int tasks_per_node = 1, gpus = 1, iters = 5, warmup = 2, timeout_s = 600;
  int parallel = 0;  // runs at once within a round; 0: the whole round
  double threshold = 0.8, expect = 0;
  std::string json_out;
  std::vector<std::string> srun_args;  // added to every srun (e.g. --gpus-per-task=1)
};

// Inside an allocation: a ring over all its nodes, every pair of nodes (each
// round's pairs at once), and, when nodes are slow, a ring without them.
// Prints the per-pair and per-node tables and names the outliers. Exit status
// 0 when none, 1 when some, 2 when the sweep cannot run (thrown).
int run_sweep(const SweepArgs& a);

}  // namespace deepops::bench
