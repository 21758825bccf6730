#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace deepops::bench {
namespace {

// `text` right-aligned in `width` characters; never cut (a type or
// reduction name is always shorter than its column).
std::string right_aligned(const std::string& text, int width) {
  const size_t w = width > 0 ? static_cast<size_t>(width) : 0;
  return text.size() < w ? std::string(w - text.size(), ' ') + text : text;
}

// "5.12e+06" -> "5.12e6", "1.0e-05" -> "1.0e-5": two or three characters
// more for the digits.
std::string short_exponent(const std::string& text) {
  const size_t e = text.find('e');
  if (e == std::string::npos) return text;
  size_t digits = e + 1;
  std::string sign;
  if (digits < text.size() && (text[digits] == '+' || text[digits] == '-')) {
    if (text[digits] == '-') sign = "-";
    ++digits;
  }
  while (digits + 1 < text.size() && text[digits] == '0') ++digits;
  return text.substr(0, e + 1) + sign + text.substr(digits);
}

}  // namespace

std::string fixed_width(double v, int width, int decimals) {
  const size_t w = width > 0 ? static_cast<size_t>(width) : 0;
  auto fits = [w](const std::string& text) {
    return text.size() <= w ? std::string(w - text.size(), ' ') + text : std::string(w, '*');
  };
  if (std::isnan(v)) return fits("nan");
  if (std::isinf(v)) return fits(v < 0 ? "-inf" : "inf");
  if (v == 0) v = 0;  // no "-0.00"
  // Wide enough for any double in fixed point: 309 digits, a sign, a point
  // and up to 9 decimals.
  char text[400];
  for (int d = std::clamp(decimals, 0, 9); d >= 0; --d) {
    const int n = std::snprintf(text, sizeof(text), "%.*f", d, v);
    if (n > 0 && static_cast<size_t>(n) <= w) return fits(text);
  }
  for (int d = std::min(width, 17); d >= 0; --d) {
    std::snprintf(text, sizeof(text), "%.*e", d, v);
    const std::string shorter = short_exponent(text);
    if (shorter.size() <= w) return fits(shorter);
  }
  return fits(text);  // asterisks: not even "1e300" fits
}

std::string fixed_width_count(size_t v, int width) {
  const std::string digits = std::to_string(v);
  if (width > 0 && digits.size() <= static_cast<size_t>(width)) return right_aligned(digits, width);
  return fixed_width(static_cast<double>(v), width, 0);
}

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
  // One rank in place: no copy, no link, nothing moved; its time is the call
  // alone and its "bandwidth" an absurd quotient. Out of place, algbw is a
  // local copy and busbw 0 by definition (table_notes says so).
  const bool alone = nranks == 1;
  // Columns as nccl-tests prints them (%12zu  %12zu  %8s  %6s  %6d  %7.2f
  // %6.2f  %6.2f  %5zu, then time to #wrong again), each exactly its width.
  std::string row;
  auto cell = [&row](const std::string& text) {
    if (!row.empty()) row += "  ";
    row += text;
  };
  cell(fixed_width_count(r.bytes, 12));
  cell(fixed_width_count(r.count, 12));
  cell(right_aligned(type_name(r.type), 8));
  cell(right_aligned(op_name(r.op), 6));
  cell(right_aligned("-1", 6));  // root: none for an all-reduce
  cell(fixed_width(r.out_of_place_us, 7));
  cell(fixed_width(oop_alg, 6));
  cell(fixed_width(allreduce_busbw(oop_alg, nranks), 6));
  cell(fixed_width_count(r.out_of_place_wrong, 5));
  cell(fixed_width(r.in_place_us, 7));
  cell(alone ? right_aligned("n/a", 6) : fixed_width(ip_alg, 6));
  cell(alone ? right_aligned("n/a", 6) : fixed_width(allreduce_busbw(ip_alg, nranks), 6));
  cell(fixed_width_count(r.in_place_wrong, 5));
  return row + "\n";
}

std::string table_notes(int nranks) {
  if (nranks != 1) return "";
  return "# one rank: no data crosses a link, so busbw is 0 by definition and only correctness "
         "is judged;\n"
         "# algbw is a local copy out of place, and in place there is nothing to copy (n/a)\n";
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
