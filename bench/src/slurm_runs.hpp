#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "subprocess.hpp"
#include "sweep.hpp"

namespace deepops::bench {

// How each `srun deepops-bench allreduce` of a sweep or a validation runs.
struct RunOptions {
  std::string size = "64M";
  std::string backend = "nccl", nccl_library;
  int gpus = 1, iters = 5, warmup = 2, timeout_s = 600;
  std::vector<std::string> srun_args;       // added to every srun (e.g. --gpus-per-task=1)
  std::vector<std::string> allreduce_args;  // added to every allreduce (--profile, --expect)
};

// Ctrl-C or SIGTERM while runs go: every srun is stopped, exit 130.
struct Interrupted {};

// The allocation's nodes (Slurm's order and NodeAddr) and the all-reduce runs
// over some of them: `srun deepops-bench allreduce -J -` on those nodes, rank
// 0 on the first, its JSON read back.
class SlurmRuns {
 public:
  // `nodes`: a Slurm hostlist, empty for the allocation's. `what` names the
  // command in the errors (sweep, validate). Throws SetupError outside an
  // allocation or with fewer than `min_nodes` nodes.
  SlurmRuns(const std::string& nodes, const char* what, size_t min_nodes);

  // Starts one all-reduce over `nodes` (indexes, Slurm's order) with
  // `tasks_per_node` ranks on each; `slot` picks its rendezvous port among
  // the runs going at once.
  Subprocess start(const std::vector<int>& nodes, int slot, int tasks_per_node,
                   const RunOptions& o) const;

  // The run's busbw, its verdict, or why there is none. `deadline` is shared
  // by the runs started together, so that k hung runs cost one timeout, not k.
  // Throws Interrupted.
  PairResult finish(Subprocess& run, int first, int second,
                    std::chrono::steady_clock::time_point deadline, const RunOptions& o) const;

  // Starts one run and waits for it.
  PairResult run(const std::vector<int>& nodes, int tasks_per_node, const RunOptions& o) const;

  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_, addresses_;
  int port_base_ = 0;
  std::string self_;
};

// "a,b,c"
std::string join(const std::vector<std::string>& items, const char* sep);

// Runs `command` (sweep, validate) with SIGINT and SIGTERM stopping every
// srun it started: then one line on stderr and exit status 130.
int run_stopping_on_signals(const char* what, const std::function<int()>& command);

}  // namespace deepops::bench
