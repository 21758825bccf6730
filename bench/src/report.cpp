#include "report.hpp"

#include <algorithm>
#include <cstdio>

namespace deepops::bench {

double algbw_gbps(size_t bytes, double us) {
  return us > 0 ? static_cast<double>(bytes) / 1e9 / (us / 1e6) : 0.0;
}

double allreduce_busbw(double algbw, int nranks) {
  return nranks > 0 ? algbw * 2.0 * (nranks - 1) / nranks : 0.0;
}

std::string table_header() {
  return "#                                                              out-of-place"
         "                       in-place          \n"
         "#       size         count      type   redop    root     time   algbw   busbw #wrong"
         "     time   algbw   busbw #wrong\n"
         "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)       "
         "     (us)  (GB/s)  (GB/s)       \n";
}

std::string table_row(const SizeResult& r, int nranks) {
  const double oop_alg = algbw_gbps(r.bytes, r.out_of_place_us);
  const double ip_alg = algbw_gbps(r.bytes, r.in_place_us);
  char line[256];
  std::snprintf(
      line, sizeof(line),
      "%12zu  %12zu  %8s  %6s  %6d  %7.2f  %6.2f  %6.2f  %5zu  %7.2f  %6.2f  %6.2f  %5zu\n",
      r.bytes, r.count, type_name(r.type), op_name(r.op), -1, r.out_of_place_us, oop_alg,
      allreduce_busbw(oop_alg, nranks), r.out_of_place_wrong, r.in_place_us, ip_alg,
      allreduce_busbw(ip_alg, nranks), r.in_place_wrong);
  return line;
}

std::string table_footer(const std::vector<SizeResult>& results, int nranks) {
  size_t wrong = 0;
  double sum = 0;
  for (const auto& r : results) {
    wrong += r.out_of_place_wrong + r.in_place_wrong;
    sum += allreduce_busbw(algbw_gbps(r.bytes, r.out_of_place_us), nranks);
  }
  const double avg = results.empty() ? 0.0 : sum / static_cast<double>(results.size());
  char text[160];
  std::snprintf(text, sizeof(text),
                "# Out of bounds values : %zu %s\n# Avg bus bandwidth    : %g \n", wrong,
                wrong ? "FAILED" : "OK", avg);
  return text;
}

Verdict judge(const std::vector<SizeResult>& results, int nranks, double expect_gbps) {
  return judge(results, nranks, Expectation{expect_gbps, expect_gbps, ""});
}

Verdict judge(const std::vector<SizeResult>& results, int nranks, const Expectation& expected) {
  Verdict v;
  if (results.empty()) {
    v.line = "FAIL: no message size was measured";
    return v;
  }
  size_t wrong = 0;
  for (const auto& r : results) wrong += r.out_of_place_wrong + r.in_place_wrong;
  const SizeResult& largest = results.back();
  const double busbw = allreduce_busbw(algbw_gbps(largest.bytes, largest.out_of_place_us), nranks);
  const double floor = expected.minimum;
  // "the expected 25.00 GB/s", or "90% of the 368.00 GB/s expected (dgx-h100: ...)"
  char basis[320];
  if (expected.why.empty()) {
    std::snprintf(basis, sizeof(basis), "the expected %.2f GB/s", floor);
  } else {
    std::snprintf(basis, sizeof(basis), "%.2f GB/s, %.0f%% of the %.2f GB/s expected (%s)", floor,
                  100.0 * floor / std::max(expected.busbw, 1e-9), expected.busbw,
                  expected.why.c_str());
  }
  char line[512];
  if (wrong) {
    std::snprintf(line, sizeof(line), "FAIL: %zu wrong elements: the reduction is corrupted",
                  wrong);
  } else if (nranks == 1) {
    v.pass = true;  // busbw = algbw * 2(n-1)/n is 0: there is no link to judge
    std::snprintf(line, sizeof(line),
                  "PASS: every result correct; one rank moves nothing over a link, so busbw is "
                  "not judged (algbw %.2f GB/s at %zu bytes is a local copy)",
                  algbw_gbps(largest.bytes, largest.out_of_place_us), largest.bytes);
  } else if (floor > 0 && busbw < floor) {
    std::snprintf(line, sizeof(line), "FAIL: busbw %.2f GB/s at %zu bytes is below %s", busbw,
                  largest.bytes, basis);
  } else if (floor > 0) {
    v.pass = true;
    std::snprintf(line, sizeof(line), "PASS: busbw %.2f GB/s at %zu bytes reaches %s", busbw,
                  largest.bytes, basis);
  } else {
    v.pass = true;
    std::snprintf(line, sizeof(line),
                  "PASS: every result correct; busbw %.2f GB/s at %zu bytes (%s)", busbw,
                  largest.bytes,
                  expected.why.empty() ? "no expected figure given: --expect or --profile"
                                       : ("no expected figure: " + expected.why).c_str());
  }
  v.line = line;
  return v;
}

}  // namespace deepops::bench
