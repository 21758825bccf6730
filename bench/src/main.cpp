// deepops-bench: the post-deployment all-reduce validator: an all-reduce
// over NCCL (GPUs) or a TCP ring (CPU), nccl-tests' table, every result
// checked, and a PASS/FAIL verdict. See bench/README.md.
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

#include "backend.hpp"
#include "datatype.hpp"
#include "launch.hpp"
#include "nccl_backend.hpp"
#include "report.hpp"
#include "ring.hpp"
#include "sizes.hpp"

namespace {
using namespace deepops::bench;

struct Args {
  std::string min_bytes = "32M", max_bytes = "32M", type = "float", op = "sum";
  double factor = 2;
  std::string increment = "0";
  int iters = 20, warmup = 5, check = 1, average = 1, gpus = 1, np = 0;
  std::string json_out, rendezvous, backend = "nccl", nccl_library;
  double expect = 0;
  bool corrupt = false;  // test-only (DEEPOPS_BENCH_TEST_CORRUPT): damage the checked results
};

const char* kFooter = R"(
Runs an all-reduce over every rank of the run and prints nccl-tests' table: per
message size, out-of-place and in-place time, algbw = bytes / time and busbw =
algbw * 2(n-1)/n, and #wrong, the elements that differ from the exact result
(every result is checked). Ends with PASS or FAIL: FAIL when any element is
wrong or when the largest message's out-of-place busbw is below --expect.
Exit status 0 on PASS, 1 on FAIL, 2 on a usage or setup error (no GPU, no
NCCL, a rank that cannot be reached).

Backends: nccl (the default) drives the GPUs through NCCL; libcuda.so.1 and
libnccl.so.2 are loaded at run time, so a node without them gets a clear "no
GPU" or "no NCCL" line. cpu moves the data over TCP between the processes (a
ring reduce-scatter then all-gather), to test the network of CPU-only nodes.

Ranks: -np N forks N local ranks; otherwise each process is one rank, placed
by its launcher (srun, mpirun) and meeting rank 0 at --rendezvous HOST:PORT
(default $MASTER_ADDR:$MASTER_PORT, else 127.0.0.1:29400). With nccl, a rank
drives -g GPUs: the ones it sees when it sees exactly that many (srun
--gpus-per-task), else its local rank's share of the node's GPUs.

Examples:
  deepops-bench allreduce -b 8 -e 8G -f 2 -g 8
  srun -N2 --ntasks-per-node=8 --gpus-per-task=1 --export=ALL,MASTER_ADDR=node01 \
      deepops-bench allreduce -b 1M -e 8G -f 2 --expect 180
  deepops-bench allreduce --backend cpu -np 4 -b 8 -e 64M -f 2)";

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
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
SizeResult run_size(AllReduceBackend& backend, Ring& ring, const Args& a, size_t bytes, DataType t,
                    RedOp op) {
  const size_t count = bytes / type_size(t);
  SizeResult r{bytes, count, t, op, 0, 0, 0, 0};
  for (bool in_place : {false, true}) {
    const size_t wrong = a.check ? backend.check(count, t, op, in_place, a.corrupt) : 0;
    const double us = backend.time(count, t, op, in_place, a.warmup, a.iters);
    const double agreed = combine_time(ring, us, a.average);
    const size_t all_wrong = total_wrong(ring, wrong);
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

void print_prefixed(const char* prefix, const std::string& lines) {
  size_t start = 0;
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    if (end == std::string::npos) end = lines.size();
    std::printf("%s%.*s\n", prefix, static_cast<int>(end - start), lines.c_str() + start);
    start = end + 1;
  }
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
  const size_t largest = sizes.empty() ? 0 : sizes.back();
  std::unique_ptr<AllReduceBackend> backend =
      a.backend == "cpu" ? make_cpu_backend(ring, largest)
                         : make_nccl_backend(ring, where, {a.gpus, largest, a.nccl_library});
  const int nranks = backend->ranks();
  const auto placement = gather_text(ring, backend->placement());
  const bool leader = where.rank == 0;
  if (leader) {
    std::printf("# deepops-bench allreduce: %d ranks (%s), backend %s, %s %s\n", nranks,
                where.launcher.c_str(), backend->name().c_str(), type_name(t), op_name(op));
    for (const auto& lines : placement) print_prefixed("#   ", lines);
    std::printf("%s", table_header().c_str());
  }
  std::vector<SizeResult> results;
  for (size_t bytes : sizes) {
    results.push_back(run_size(*backend, ring, a, bytes, t, op));
    if (leader) {
      std::printf("%s", table_row(results.back(), nranks).c_str());
      std::fflush(stdout);
    }
  }
  Verdict v = judge(results, nranks, a.expect);
  if (leader) {
    std::printf("%s%s\n", table_footer(results, nranks).c_str(), v.line.c_str());
    if (!a.json_out.empty()) std::ofstream(a.json_out) << to_json(results, nranks, v).dump(2);
  }
  return v.pass ? 0 : 1;
}

// -np N: N ranks on this machine, meeting at a free loopback port.
int run_local(const Args& a, char** argv) {
  // A node without a GPU or NCCL says so once, not once per rank.
  if (a.backend == "nccl") probe_nccl({a.gpus, 0, a.nccl_library});
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
  ar->add_option("-g,--ngpus", a.gpus, "GPUs per process (nccl backend)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  ar->add_option("-J,--json", a.json_out, "also write the results as JSON to this file");
  ar->add_option("--backend", a.backend, "nccl (GPUs) or cpu (a TCP ring between hosts)")
      ->check(CLI::IsMember({"nccl", "cpu"}))
      ->capture_default_str();
  ar->add_option("--nccl-library", a.nccl_library, "libnccl.so.2 to load (default: the loader's)")
      ->envname("DEEPOPS_BENCH_NCCL_LIBRARY");
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
    if (a.backend == "cpu" && a.gpus != 1) {
      std::fprintf(stderr,
                   "deepops-bench: -g is for the nccl backend; the cpu one runs one "
                   "rank per process\n");
      return 2;
    }
    const LaunchInfo where = detect_launch([](const std::string& k) -> std::optional<std::string> {
      const char* v = std::getenv(k.c_str());
      if (!v) return std::nullopt;
      return std::string(v);
    });
    if (a.np > 0 && where.launcher != "local") return run_local(a, argv);
    return run_rank(a, where);
  } catch (const SetupError& e) {
    if (*e.what()) std::fprintf(stderr, "deepops-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepops-bench: %s\n", e.what());
    return 2;
  }
}
