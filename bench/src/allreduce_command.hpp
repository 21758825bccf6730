#pragma once

#include <string>
#include <vector>

namespace deepops::bench {

// deepops-bench allreduce's options, as parsed from the command line.
// -np's bound: more ranks than this on one machine measure nothing but the
// scheduler, and a typo (-np 100000) must not fork a process storm.
inline constexpr int kMaxLocalRanks = 256;

struct AllReduceArgs {
  std::string min_bytes = "32M", max_bytes = "32M", type = "float", op = "sum";
  double factor = 2;
  std::string increment = "0";
  int iters = 20, warmup = 5, check = 1, average = 1, gpus = 1, np = 0;
  std::string json_out;  // "-": JSON on stdout instead of the table
  std::string prometheus_out;
  std::string rendezvous, backend = "nccl", nccl_library;
  double expect = 0;
  std::string profile;
  std::vector<std::string> profile_dirs;
  bool corrupt = false;  // test-only (DEEPOPS_BENCH_TEST_CORRUPT): damage the checked results
};

// Runs this process's part: forks -np ranks, or is one rank of a launched
// run. Exit status: 0 PASS, 1 FAIL, 2 setup or usage error (thrown).
// `argv` is re-executed for each -np rank.
int run_allreduce(const AllReduceArgs& a, char** argv);

}  // namespace deepops::bench
