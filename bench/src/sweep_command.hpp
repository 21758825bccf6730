#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "slurm_runs.hpp"
#include "sweep.hpp"

namespace deepops::bench {

// deepops-bench sweep's options.
struct SweepArgs {
  std::string nodes;  // a Slurm hostlist; default: the allocation's
  RunOptions run;     // size, backend, GPUs, iterations, srun options
  int tasks_per_node = 1;
  int parallel = 0;  // runs at once within a round; 0: the whole round
  double threshold = 0.8, expect = 0;
  std::string json_out;
};

// What a sweep measured and found.
struct SweepOutcome {
  PairResult all;                 // the ring of all nodes
  std::vector<PairResult> pairs;  // every pair, the better of two runs where one was redone
  SweepAnalysis analysis;
  bool ran_without = false;  // a ring without the slow or failed nodes
  std::string without;       // its nodes left out
  PairResult rest;           // that ring
};

// The ring over all nodes (unless `all` is given: validate ran it already),
// every pair of nodes (each round's pairs at once), and, when nodes are slow,
// a ring without them; prints the per-pair and per-node tables and the
// findings. Throws Interrupted.
SweepOutcome sweep_stage(const SlurmRuns& runs, const SweepArgs& a, const PairResult* all);

nlohmann::json sweep_json(const std::vector<std::string>& names, const SweepOutcome& s);

// Inside an allocation: the sweep, its verdict line. Exit status 0 when no
// outlier, 1 when some, 2 when the sweep cannot run (thrown), 130 when
// interrupted.
int run_sweep(const SweepArgs& a);

}  // namespace deepops::bench
