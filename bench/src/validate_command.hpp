#pragma once

#include <string>
#include <vector>

#include "sweep_command.hpp"

namespace deepops::bench {

// deepops-bench validate's options.
struct ValidateArgs {
  SweepArgs sweep;      // nodes, run options, ranks per node for the ring, threshold
  int node_tasks = 0;   // ranks of each node's own all-reduce; 0: see validate_command.cpp
  std::string profile;  // judges both stages (intra- and inter-node figures)
  double expect = 0, expect_node = 0;  // GB/s: the ring's and each node's figure
  std::string sweep_mode = "auto";     // auto, always, never
  std::string prometheus_out;
  std::vector<std::string> profile_dirs;
};

// Inside an allocation: every node's own all-reduce at once, then the ring
// over all nodes, then (when the ring fails or has no figure to meet) the
// sweep that names the node or link. One table per stage, one verdict line.
// Exit status 0 PASS, 1 FAIL, 2 when it cannot run (thrown), 130 when
// interrupted.
int run_validate(const ValidateArgs& a);

}  // namespace deepops::bench
