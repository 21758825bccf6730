#include "metrics.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace deepops::bench {
std::string prometheus_number(double v) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.15g", v);
  return text;
}

std::string prometheus_text(const RunSummary& s) {
  const std::string run = "backend=\"" + s.backend + "\",ranks=\"" + std::to_string(s.ranks) +
                          "\",nodes=\"" + std::to_string(s.nodes) + "\"";
  std::string out;
  auto metric = [&](const std::string& name, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  const auto& results = *s.results;
  metric("deepops_bench_allreduce_busbw_gbps", "Out-of-place all-reduce bus bandwidth, GB/s.");
  for (const auto& r : results) {
    const double alg = algbw_gbps(r.bytes, r.out_of_place_us);
    out += "deepops_bench_allreduce_busbw_gbps{" + run + ",size=\"" + std::to_string(r.bytes) +
           "\",type=\"" + type_name(r.type) + "\",op=\"" + op_name(r.op) + "\"} " +
           prometheus_number(allreduce_busbw(alg, s.ranks)) + "\n";
  }
  metric("deepops_bench_allreduce_algbw_gbps",
         "Out-of-place all-reduce algorithm bandwidth, GB/s.");
  for (const auto& r : results) {
    out += "deepops_bench_allreduce_algbw_gbps{" + run + ",size=\"" + std::to_string(r.bytes) +
           "\"} " + prometheus_number(algbw_gbps(r.bytes, r.out_of_place_us)) + "\n";
  }
  size_t wrong = 0;
  for (const auto& r : results) wrong += r.out_of_place_wrong + r.in_place_wrong;
  double largest = 0;
  if (!results.empty()) {
    const auto& r = results.back();
    largest = allreduce_busbw(algbw_gbps(r.bytes, r.out_of_place_us), s.ranks);
  }
  metric("deepops_bench_allreduce_wrong_elements",
         "Result elements that differ from the exact value.");
  out += "deepops_bench_allreduce_wrong_elements{" + run + "} " + std::to_string(wrong) + "\n";
  metric("deepops_bench_allreduce_largest_busbw_gbps",
         "Out-of-place busbw of the largest message: the figure the verdict judges.");
  out += "deepops_bench_allreduce_largest_busbw_gbps{" + run + "} " + prometheus_number(largest) +
         "\n";
  metric("deepops_bench_allreduce_expected_busbw_gbps", "The busbw PASS needs (0: none given).");
  out += "deepops_bench_allreduce_expected_busbw_gbps{" + run + "} " +
         prometheus_number(s.expected.minimum) + "\n";
  metric("deepops_bench_allreduce_pass", "1 when the run passed, 0 when it failed.");
  out += "deepops_bench_allreduce_pass{" + run + "} " + (s.verdict.pass ? "1" : "0") + "\n";
  metric("deepops_bench_allreduce_finished_seconds",
         "When the run ended, seconds since the epoch.");
  out += "deepops_bench_allreduce_finished_seconds{" + run + "} " +
         prometheus_number(s.finished_unix) + "\n";
  return out;
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      throw std::runtime_error("cannot write " + temporary + ": " + std::strerror(errno));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    std::remove(temporary.c_str());
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(saved));
  }
}

}  // namespace deepops::bench
