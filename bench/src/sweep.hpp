#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace deepops::bench {

// The median of `values` (0 when empty).
double median(std::vector<double> values);
// "12.34 GB/s"
std::string gbps_text(double gbps);

// The pairs of a sweep over n nodes, in rounds of disjoint pairs (the circle
// method): n-1 rounds for even n, n for odd (one node sits each round out).
// Every pair appears once; no node is in two pairs of a round, so a round's
// runs go at the same time without sharing a node.
std::vector<std::vector<std::pair<int, int>>> pair_rounds(int n);

// One pair's all-reduce: the largest message's out-of-place busbw, or why
// it gave none.
struct PairResult {
  int a = 0, b = 0;     // node indexes
  double busbw = 0;     // GB/s
  bool ok = false;      // ran and every element was right
  std::string problem;  // when !ok: what went wrong
  bool passed = false;  // the run's own verdict (its --expect or --profile)
  std::string verdict;  // that verdict's line
};

struct NodeVerdict {
  std::string name;
  double best = 0;    // its best pair's busbw: a node is as fast as its best pair
  double median = 0;  // over its pairs
  bool slow = false;
  bool failed = false;  // no pair with it ran
};
struct LinkVerdict {
  int a = 0, b = 0;
  double busbw = 0;
  double expected = 0;  // the slower of its two nodes' best
};

struct SweepAnalysis {
  std::vector<NodeVerdict> nodes;
  std::vector<LinkVerdict> slow_links;  // pairs slow although both nodes are fast elsewhere
  double reference = 0;                 // the median of the nodes' best pairs
  std::vector<std::string> findings;    // one line per outlier, for the admin
  bool pass = false;
};

// Names the outliers. A node is slow when even its best pair stays below
// `threshold` times the median of all nodes' best pairs (or below `expect`
// GB/s when given); a pair of two fast nodes is a slow link when it stays
// below `threshold` times the slower node's best. Pairs that failed name
// their nodes; a node in no working pair is named as failed.
SweepAnalysis analyse_sweep(const std::vector<std::string>& node_names,
                            const std::vector<PairResult>& pairs, double threshold, double expect);

// Rank 0's JSON (`allreduce -J -`) out of `srun --label` output ("0: {" to
// "0: }"): the other ranks' lines, and NCCL_DEBUG's, are left out.
std::optional<std::string> rank0_json(const std::string& srun_output);

// "NodeAddr=" of `scontrol show node -o` output for node `name`; empty when
// the output does not hold it.
std::string node_address(const std::string& scontrol_output, const std::string& name);
// Slurm's NodeAddr for `node`, asked of scontrol; empty when it gives none.
// Throws std::runtime_error when scontrol fails.
std::string slurm_node_address(const std::string& node);

}  // namespace deepops::bench
