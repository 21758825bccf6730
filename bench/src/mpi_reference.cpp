// The yardstick for the cpu backend: Open MPI's MPI_Allreduce on the same
// message sizes, timed as deepops-bench times its own (warm-up, barrier, mean
// over the ranks) and printed in the same table, so that bench/cpu_vs_mpi.sh
// reads both alike. Float sum, every result checked.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <vector>

#include "datatype.hpp"
#include "report.hpp"
#include "sizes.hpp"

namespace {
using namespace deepops::bench;

double mean_over_ranks(double us, int nranks) {
  double sum = 0;
  MPI_Allreduce(&us, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return sum / nranks;
}

// One all-reduce of `count` floats, in place when `out` is null.
void allreduce(std::vector<float>& in, std::vector<float>* out, size_t count) {
  const int n = static_cast<int>(count);
  if (out) {
    MPI_Allreduce(in.data(), out->data(), n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  } else {
    MPI_Allreduce(MPI_IN_PLACE, in.data(), n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
}

SizeResult measure(size_t bytes, int rank, int nranks, int warmup, int iters) {
  const size_t count = bytes / sizeof(float);
  std::vector<float> in(count), out(count);
  SizeResult r{bytes, count, DataType::f32, RedOp::sum, 0, 0, 0, 0};
  for (bool in_place : {false, true}) {
    std::vector<float>* target = in_place ? nullptr : &out;
    fill_input(in.data(), count, DataType::f32, RedOp::sum, rank);
    allreduce(in, target, count);
    size_t wrong =
        count_wrong(in_place ? in.data() : out.data(), count, DataType::f32, RedOp::sum, nranks);
    for (int i = 0; i < warmup; ++i) allreduce(in, target, count);
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) allreduce(in, target, count);
    const std::chrono::duration<double, std::micro> spent =
        std::chrono::steady_clock::now() - start;
    const double us = mean_over_ranks(spent.count() / std::max(1, iters), nranks);
    long long all_wrong = 0, mine = static_cast<long long>(wrong);
    MPI_Allreduce(&mine, &all_wrong, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    (in_place ? r.in_place_us : r.out_of_place_us) = us;
    (in_place ? r.in_place_wrong : r.out_of_place_wrong) = static_cast<size_t>(all_wrong);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  CLI::App app("MPI_Allreduce of floats, timed and printed as deepops-bench does",
               "deepops-bench-mpi-reference");
  std::string min_bytes = "64M", max_bytes = "1G";
  double factor = 2;
  int iters = 20, warmup = 5;
  app.add_option("-b", min_bytes, "smallest message")->capture_default_str();
  app.add_option("-e", max_bytes, "largest message")->capture_default_str();
  app.add_option("-f", factor, "step factor")->capture_default_str();
  app.add_option("-n", iters, "timed iterations")->capture_default_str();
  app.add_option("-w", warmup, "warm-up iterations")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    MPI_Finalize();
    return rc;
  }
  if (rank == 0) {
    std::printf("# MPI_Allreduce reference: %d ranks, float sum\n%s", nranks,
                table_header().c_str());
  }
  std::vector<SizeResult> results;
  for (size_t bytes :
       message_sizes(parse_size(min_bytes), parse_size(max_bytes), factor, 0, sizeof(float))) {
    results.push_back(measure(bytes, rank, nranks, warmup, iters));
    if (rank == 0) std::printf("%s", table_row(results.back(), nranks).c_str());
    std::fflush(stdout);
  }
  if (rank == 0) std::printf("%s", table_footer(results, nranks).c_str());
  MPI_Finalize();
  return 0;
}
