#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "datatype.hpp"

namespace deepops::bench {

// One message size of an all-reduce run, as nccl-tests reports it.
struct SizeResult {
  size_t bytes = 0;
  size_t count = 0;  // elements
  DataType type = DataType::f32;
  RedOp op = RedOp::sum;
  double out_of_place_us = 0;  // mean time per iteration
  double in_place_us = 0;
  size_t out_of_place_wrong = 0;
  size_t in_place_wrong = 0;
};

// nccl-tests: algbw = bytes / 1e9 / seconds; all-reduce moves 2(n-1)/n of
// the data over each rank's link, so busbw = algbw * 2(n-1)/n.
double algbw_gbps(size_t bytes, double us);
double allreduce_busbw(double algbw, int nranks);

// The nccl-tests table: header lines, one line per size, and the footer
// (out-of-bounds count and the average bus bandwidth).
std::string table_header();
std::string table_row(const SizeResult& r, int nranks);
std::string table_footer(const std::vector<SizeResult>& results, int nranks);

// PASS or FAIL against the bus bandwidth the hardware should reach, judged
// on the out-of-place busbw of the largest message (never the average, which
// small messages drag down), and on correctness: one wrong element fails.
struct Verdict {
  bool pass = false;
  std::string line;  // one line saying why
};
// The figure to judge against: from --expect (minimum = busbw, no `why`) or
// a profile. minimum 0: correctness alone.
struct Expectation {
  double busbw = 0;    // what the hardware should reach, GB/s
  double minimum = 0;  // the PASS line (a profile's accept fraction of busbw)
  std::string why;     // how busbw was worked out
};
Verdict judge(const std::vector<SizeResult>& results, int nranks, const Expectation& expected);
Verdict judge(const std::vector<SizeResult>& results, int nranks, double expect_gbps);

}  // namespace deepops::bench
