#pragma once

#include <string>
#include <vector>

#include "report.hpp"

namespace deepops::bench {

// What a run reports to node_exporter's textfile collector.
struct RunSummary {
  std::string backend;  // "nccl", "cpu"
  int ranks = 0;
  int nodes = 0;
  const std::vector<SizeResult>* results = nullptr;
  Expectation expected;
  Verdict verdict;
  double finished_unix = 0;  // seconds since the epoch
};

// A sample value as the exposition format writes it: every digit a double
// holds, no trailing zeros.
std::string prometheus_number(double v);

// Prometheus text exposition: per size the out-of-place busbw, algbw and
// wrong elements; for the run, the largest message's busbw, the expected
// figure, PASS (1) or FAIL (0), and when it finished.
std::string prometheus_text(const RunSummary& s);

// Writes `text` to `path` through a temporary file and a rename, so that the
// collector never reads half a file. Throws std::runtime_error.
void write_atomically(const std::string& path, const std::string& text);

}  // namespace deepops::bench
