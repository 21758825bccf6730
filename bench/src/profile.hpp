#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "report.hpp"

namespace deepops::bench {

// What a kind of node should reach, from a profile file (conf/bench/*.conf,
// installed in /etc/deepops/bench): "key value" lines, '#' comments.
//   gpus_per_node 8         GPUs in one node
//   nics_per_node 8         inter-node NICs in one node
//   intra_node_busbw 370    GB/s, all-reduce over one node's GPUs
//   per_nic_busbw 46        GB/s each NIC gives an inter-node all-reduce
//   accept 0.9              PASS at this fraction of the expected figure
struct Profile {
  std::string name;
  int gpus_per_node = 0;
  int nics_per_node = 0;
  double intra_node_busbw = 0;
  double per_nic_busbw = 0;
  double accept = 0.9;
};

// Throws std::invalid_argument naming the line and what is wrong.
Profile parse_profile(std::string_view text, const std::string& name);

// NAME is a file path when it holds a '/', else NAME.conf in the first of
// `dirs` that has it. Throws std::invalid_argument listing where it looked
// and the profiles found there.
Profile load_profile(const std::string& name, const std::vector<std::string>& dirs);

// The expected busbw of a run over `nodes` nodes with `ranks_per_node` GPUs
// (ranks) each: one node gives intra_node_busbw; more give per_nic_busbw
// times the NICs those GPUs use (their share of nics_per_node), never more
// than one node's figure. `why` says how it was worked out.
Expectation expected_busbw(const Profile& p, int nodes, int ranks_per_node);

}  // namespace deepops::bench
