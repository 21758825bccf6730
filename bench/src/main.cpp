// deepops-bench: the post-deployment all-reduce validator. So far the cpu
// backend (a TCP ring) with the local -np launcher and an explicit
// rendezvous; see bench/README.md for what is still to come.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datatype.hpp"
#include "launch.hpp"
#include "report.hpp"
#include "ring.hpp"
#include "sizes.hpp"

namespace {
using namespace deepops::bench;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string min_bytes = "32M", max_bytes = "32M", type = "float", op = "sum";
  double factor = 2;
  std::string increment = "0";
  int iters = 20, warmup = 5, check = 1, average = 1, gpus = 1, np = 0;
  std::string json_out, rendezvous, backend = "cpu";
  double expect = 0;
  bool corrupt = false;  // test-only (DEEPOPS_BENCH_TEST_CORRUPT): damage the checked results
};

const char* kFooter = R"(
Runs an all-reduce over every rank of the run and prints nccl-tests' table: per
message size, out-of-place and in-place time, algbw = bytes / time and busbw =
algbw * 2(n-1)/n, and #wrong, the elements that differ from the exact result
(every result is checked). Ends with PASS or FAIL: FAIL when any element is
wrong or when the largest message's out-of-place busbw is below --expect.
Exit status 0 on PASS, 1 on FAIL, 2 on a usage or setup error.

Ranks: -np N forks N local ranks; otherwise each process is one rank, placed
by its launcher (srun, mpirun) and meeting rank 0 at --rendezvous HOST:PORT
(default $MASTER_ADDR:$MASTER_PORT).

Examples:
  deepops-bench allreduce -np 4 -b 8 -e 64M -f 2
  deepops-bench allreduce -np 2 -d bfloat16 -o max -b 1M -e 1G --expect 5)";

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The mean time per iteration over the ranks (-a 1), or rank 0's, the
// minimum or the maximum (-a 0, 2, 3): all ranks take part.
double combine_time(Ring& ring, double us, int average) {
  float v = static_cast<float>(us);
  if (average == 0) v = ring.rank() == 0 ? v : 0.0f;
  RedOp op = average == 2 ? RedOp::min : average == 3 ? RedOp::max : RedOp::sum;
  ring.allreduce(&v, 1, DataType::f32, op);
  if (average == 1) v /= static_cast<float>(ring.size());
  return static_cast<double>(v);
}

size_t total_wrong(Ring& ring, size_t wrong) {
  int32_t w = static_cast<int32_t>(std::min<size_t>(wrong, 1u << 30));
  ring.allreduce(&w, 1, DataType::i32, RedOp::sum);
  return static_cast<size_t>(w);
}

// One message size, out of place then in place: checked once, then timed.
SizeResult run_size(Ring& ring, const Args& a, size_t bytes, DataType t, RedOp op) {
  const size_t count = bytes / type_size(t);
  std::vector<char> input(bytes), output(bytes);
  SizeResult r{bytes, count, t, op, 0, 0, 0, 0};
  for (bool in_place : {false, true}) {
    auto once = [&] {
      if (!in_place) std::copy(input.begin(), input.end(), output.begin());
      ring.allreduce(in_place ? input.data() : output.data(), count, t, op);
    };
    size_t wrong = 0;
    if (a.check) {
      fill_input(input.data(), count, t, op, ring.rank());
      ring.corrupt_results(a.corrupt);
      once();
      ring.corrupt_results(false);
      wrong = count_wrong(in_place ? input.data() : output.data(), count, t, op, ring.size());
    }
    for (int i = 0; i < a.warmup; ++i) once();
    ring.barrier();
    auto start = Clock::now();
    for (int i = 0; i < a.iters; ++i) once();
    double us = seconds_since(start) * 1e6 / std::max(1, a.iters);
    double agreed = combine_time(ring, us, a.average);
    size_t all_wrong = total_wrong(ring, wrong);
    (in_place ? r.in_place_us : r.out_of_place_us) = agreed;
    (in_place ? r.in_place_wrong : r.out_of_place_wrong) = all_wrong;
  }
  return r;
}

nlohmann::json to_json(const std::vector<SizeResult>& results, int nranks, const Verdict& v) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    double oop = algbw_gbps(r.bytes, r.out_of_place_us), ip = algbw_gbps(r.bytes, r.in_place_us);
    rows.push_back({{"size", r.bytes},
                    {"count", r.count},
                    {"type", type_name(r.type)},
                    {"redop", op_name(r.op)},
                    {"out_of_place",
                     {{"time_us", r.out_of_place_us},
                      {"algbw", oop},
                      {"busbw", allreduce_busbw(oop, nranks)},
                      {"wrong", r.out_of_place_wrong}}},
                    {"in_place",
                     {{"time_us", r.in_place_us},
                      {"algbw", ip},
                      {"busbw", allreduce_busbw(ip, nranks)},
                      {"wrong", r.in_place_wrong}}}});
  }
  return {{"ranks", nranks}, {"results", rows}, {"pass", v.pass}, {"verdict", v.line}};
}

int run_rank(const Args& a, const LaunchInfo& where) {
  const DataType t = parse_type(a.type);
  const RedOp op = parse_op(a.op);
  const auto sizes = message_sizes(parse_size(a.min_bytes), parse_size(a.max_bytes), a.factor,
                                   parse_size(a.increment), type_size(t));
  std::string rv = a.rendezvous.empty()
                       ? env_or("MASTER_ADDR", "127.0.0.1") + ":" + env_or("MASTER_PORT", "29400")
                       : a.rendezvous;
  const size_t colon = rv.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--rendezvous wants HOST:PORT");
  // -np hands rank 0 the rendezvous socket it opened: no port race.
  const int listener =
      where.rank == 0 ? std::atoi(env_or("DEEPOPS_BENCH_LISTEN_FD", "-1").c_str()) : -1;
  Ring ring = Ring::join(where.rank, where.size, rv.substr(0, colon),
                         std::stoi(rv.substr(colon + 1)), std::chrono::seconds(60), listener);
  const bool leader = where.rank == 0;
  if (leader) {
    std::printf("# deepops-bench allreduce: %d ranks (%s), backend %s, %s %s\n", where.size,
                where.launcher.c_str(), a.backend.c_str(), type_name(t), op_name(op));
    std::printf("%s", table_header().c_str());
  }
  std::vector<SizeResult> results;
  for (size_t bytes : sizes) {
    results.push_back(run_size(ring, a, bytes, t, op));
    if (leader) {
      std::printf("%s", table_row(results.back(), where.size).c_str());
      std::fflush(stdout);
    }
  }
  Verdict v = judge(results, where.size, a.expect);
  if (leader) {
    std::printf("%s%s\n", table_footer(results, where.size).c_str(), v.line.c_str());
    if (!a.json_out.empty()) std::ofstream(a.json_out) << to_json(results, where.size, v).dump(2);
  }
  return v.pass ? 0 : 1;
}

// -np N: N ranks on this machine, meeting at a free loopback port.
int run_local(const Args& a, char** argv) {
  auto [rendezvous, port] = listen_on(0);
  std::vector<pid_t> children;
  for (int r = 0; r < a.np; ++r) {
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      setenv("DEEPOPS_BENCH_RANK", std::to_string(r).c_str(), 1);
      setenv("DEEPOPS_BENCH_SIZE", std::to_string(a.np).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (r == 0) {
        fcntl(rendezvous.get(), F_SETFD, 0);  // kept across exec for rank 0 only
        setenv("DEEPOPS_BENCH_LISTEN_FD", std::to_string(rendezvous.get()).c_str(), 1);
      }
      execv("/proc/self/exe", argv);
      _exit(2);
    }
    children.push_back(pid);
  }
  int worst = 0;
  for (pid_t pid : children) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 2;
    worst = std::max(worst, code);
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("deepops-bench: validate a cluster's all-reduce bandwidth", "deepops-bench");
  app.require_subcommand(1);
  Args a;
  auto* ar = app.add_subcommand("allreduce", "all-reduce across the ranks, nccl-tests style");
  ar->footer(kFooter);
  ar->add_option("-b,--minbytes", a.min_bytes, "smallest message (K, M, G)")->capture_default_str();
  ar->add_option("-e,--maxbytes", a.max_bytes, "largest message")->capture_default_str();
  ar->add_option("-f,--stepfactor", a.factor, "multiply the size by this")->capture_default_str();
  ar->add_option("-i,--stepbytes", a.increment, "or add this, when -f is 1");
  ar->add_option("-n,--iters", a.iters, "timed iterations per size")->capture_default_str();
  ar->add_option("-w,--warmup_iters", a.warmup, "untimed iterations first")->capture_default_str();
  ar->add_option("-c,--check", a.check, "check every result (0: no)")->capture_default_str();
  ar->add_option("-d,--datatype", a.type, "float, half, bfloat16, int32")->capture_default_str();
  ar->add_option("-o,--op", a.op, "sum, prod, min, max")->capture_default_str();
  ar->add_option("-a,--average", a.average, "time over ranks: 0 rank 0, 1 mean, 2 min, 3 max")
      ->capture_default_str();
  ar->add_option("-g,--ngpus", a.gpus, "GPUs per process (nccl backend)");
  ar->add_option("-J,--json", a.json_out, "also write the results as JSON to this file");
  ar->add_option("--backend", a.backend, "cpu (TCP ring); nccl is still to come")
      ->capture_default_str();
  ar->add_option("--np", a.np, "fork this many ranks on this machine (also -np, as mpirun)");
  ar->add_option("--rendezvous", a.rendezvous, "HOST:PORT where rank 0 listens");
  ar->add_option("--expect", a.expect, "the busbw (GB/s) the largest message must reach");
  // mpirun's spelling: CLI11 takes one-letter short options only.
  std::vector<std::string> words(argv, argv + argc);
  for (auto& w : words) {
    if (w == "-np") w = "--np";
  }
  std::vector<char*> args;
  for (auto& w : words) args.push_back(w.data());
  args.push_back(nullptr);
  CLI11_PARSE(app, argc, args.data());
  argv = args.data();
  try {
    a.corrupt = std::getenv("DEEPOPS_BENCH_TEST_CORRUPT") != nullptr;
    if (a.backend != "cpu") {
      std::fprintf(stderr, "deepops-bench: backend '%s' is not built yet; use --backend cpu\n",
                   a.backend.c_str());
      return 2;
    }
    const LaunchInfo where = detect_launch([](const std::string& k) -> std::optional<std::string> {
      const char* v = std::getenv(k.c_str());
      if (!v) return std::nullopt;
      return std::string(v);
    });
    if (a.np > 0 && where.launcher != "local") return run_local(a, argv);
    return run_rank(a, where);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepops-bench: %s\n", e.what());
    return 2;
  }
}
