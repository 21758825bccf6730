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
// (out-of-bounds count and the average bus bandwidth). Every row is exactly
// as wide as the header, its cells right-aligned under their labels, whatever
// the values (fixed_width). With one rank the in-place algbw and busbw cells
// read n/a: that all-reduce does nothing at all, its "bandwidth" is absurd.
std::string table_header();
std::string table_row(const SizeResult& r, int nranks);
std::string table_footer(const std::vector<SizeResult>& results, int nranks);
// Comment lines ("# ...") printed under the header: why one rank's busbw is 0
// and what its algbw measures. Empty for more than one rank.
std::string table_notes(int nranks);

// A table cell of exactly `width` characters, right-aligned: fixed point with
// as many of `decimals` decimals as fit (9999.99, 10000.0, 1234567), then,
// for what is still too wide, scientific notation with a short exponent and
// as many digits as fit (5.12e6, 1.235e8, 1e300), still a number to awk and
// strtod. nan, inf and -inf as words; asterisks where nothing fits (1e300
// in 4 characters).
std::string fixed_width(double v, int width, int decimals = 2);
// An unsigned count the same way: every digit while they fit (12 digits: up
// to 999999999999), else scientific (1.0995116e12).
std::string fixed_width_count(size_t v, int width);

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
