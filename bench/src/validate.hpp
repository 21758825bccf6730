#pragma once

#include <string>
#include <vector>

#include "sweep.hpp"

namespace deepops::bench {

// validate's first stage: each node's own all-reduce (NCCL over its GPUs,
// or the TCP ring between its local ranks), all nodes at once.
struct NodeStageAnalysis {
  double reference = 0;  // the median busbw of the nodes whose run gave one
  std::vector<bool> slow, failed;
  std::vector<std::string> findings;  // one line per slow or failed node
  bool pass = false;
};

// Judges the nodes' own runs (runs[i] is node i's): a run that gave no
// result or a wrong element fails its node; a node is slow when its run's
// own verdict failed (the profile's intra-node figure or --expect-node) or
// its busbw stays below `threshold` times the median of the nodes' (with
// two nodes or more that measured a busbw: one rank per node measures none).
NodeStageAnalysis analyse_node_stage(const std::vector<std::string>& names,
                                     const std::vector<PairResult>& runs, double threshold);

// The one verdict line of a validation: "PASS: ..." or "FAIL: " and what
// is named, stage by stage.
struct ValidateSummary {
  std::vector<std::string> names;  // the nodes, Slurm's order
  double threshold = 0.8;
  std::vector<PairResult> node_runs;  // node i's own all-reduce
  NodeStageAnalysis node_stage;
  bool ring_ran = false;
  PairResult ring;  // over all nodes
  bool sweep_ran = false;
  SweepAnalysis sweep;       // when it ran
  bool ring_judged = false;  // against a figure (--profile, --expect), not correctness only
};
struct ValidateVerdict {
  bool pass = false;
  std::string line;
};
ValidateVerdict validate_verdict(const ValidateSummary& s);

// node_exporter textfile metrics of a validation.
std::string validate_prometheus_text(const ValidateSummary& s, const ValidateVerdict& v,
                                     const std::string& backend, double finished_unix);

}  // namespace deepops::bench
