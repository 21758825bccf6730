// deepops-bench: the post-deployment all-reduce validator: an all-reduce
// over NCCL (GPUs) or a TCP ring (CPU), nccl-tests' table, every result
// checked, and a PASS/FAIL verdict. See bench/README.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "allreduce_command.hpp"
#include "backend.hpp"
#include "sweep_command.hpp"

namespace {
using namespace deepops::bench;

const char* kFooter = R"(
Runs an all-reduce over every rank of the run and prints nccl-tests' table: per
message size, out-of-place and in-place time, algbw = bytes / time and busbw =
algbw * 2(n-1)/n, and #wrong, the elements that differ from the exact result
(every result is checked). Ends with PASS or FAIL: FAIL when any element is
wrong or when the largest message's out-of-place busbw is below --expect, or
below the figure of --profile scaled to the nodes and GPUs in use.
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

Outputs: -J FILE writes the results as JSON (-J -: JSON on stdout instead of
the table); --prometheus FILE writes them for node_exporter's textfile
collector (written whole, through a rename). Profiles (dgx-a100, dgx-h100, or
a file path) live in /etc/deepops/bench (DEEPOPS_BENCH_PROFILES: other folders,
colon-separated); see conf/README.md.

Examples:
  deepops-bench allreduce -b 8 -e 8G -f 2 -g 8
  srun -N2 --ntasks-per-node=8 --gpus-per-task=1 --export=ALL,MASTER_ADDR=node01 \
      deepops-bench allreduce -b 1M -e 8G -f 2 --profile dgx-h100
  deepops-bench allreduce --backend cpu -np 4 -b 8 -e 64M -f 2)";

const char* kSweepFooter = R"(
Inside an allocation (salloc, sbatch), finds the slow node or link: an
all-reduce over a ring of all the allocation's nodes, then one between every
pair of nodes (each round's disjoint pairs at once), then, when some nodes are
slow, a ring without them. Prints the per-pair and per-node bus bandwidth and
one line per outlier:
  SLOW NODE   even its best pair stays below --threshold times the median of
              all nodes' best pairs (or below --expect)
  SLOW LINK   a pair of two fast nodes below --threshold times the slower one,
              also when run again on its own
  FAILED      a run that gave no result, with the end of its error output
Exit status 0 when there is no outlier, 1 when there is, 2 when the sweep
cannot run. Each run is `srun deepops-bench allreduce` on the nodes (rank 0's
address from Slurm's NodeAddr); --srun-arg adds options to every srun.

Examples:
  salloc -N8 deepops-bench sweep --backend nccl --tasks-per-node 8 \
      --srun-arg=--gpus-per-task=1 --size 1G
  salloc -N4 deepops-bench sweep --backend cpu --size 64M)";

// Profile folders: DEEPOPS_BENCH_PROFILES (colon-separated), then the
// installed /etc/deepops/bench.
std::vector<std::string> profile_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("DEEPOPS_BENCH_PROFILES")) {
    std::string list = env;
    for (size_t start = 0; start <= list.size();) {
      size_t end = list.find(':', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) dirs.push_back(list.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.emplace_back(DEEPOPS_BENCH_PROFILE_DIR);
  return dirs;
}

void add_allreduce(CLI::App& app, AllReduceArgs& a) {
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
  ar->add_option("-J,--json", a.json_out, "also write the results as JSON to FILE (-: stdout)");
  ar->add_option("--prometheus", a.prometheus_out, "write node_exporter textfile metrics to FILE");
  ar->add_option("--backend", a.backend, "nccl (GPUs) or cpu (a TCP ring between hosts)")
      ->check(CLI::IsMember({"nccl", "cpu"}))
      ->capture_default_str();
  ar->add_option("--nccl-library", a.nccl_library, "libnccl.so.2 to load (default: the loader's)")
      ->envname("DEEPOPS_BENCH_NCCL_LIBRARY");
  ar->add_option("--np", a.np,
                 "fork this many ranks on this machine, 1 to " + std::to_string(kMaxLocalRanks) +
                     " (also -np, as mpirun)")
      ->type_name("N")
      ->check(CLI::Range(1, kMaxLocalRanks));
  ar->add_option("--rendezvous", a.rendezvous, "HOST:PORT where rank 0 listens");
  auto* expect =
      ar->add_option("--expect", a.expect, "the busbw (GB/s) the largest message must reach");
  ar->add_option("--profile", a.profile, "judge against this profile (dgx-h100, or a file)")
      ->excludes(expect);
}

void add_sweep(CLI::App& app, SweepArgs& s) {
  auto* sw = app.add_subcommand("sweep", "find the slow node or link of an allocation");
  sw->footer(kSweepFooter);
  sw->add_option("--nodes", s.nodes, "a Slurm hostlist (default: the allocation's nodes)");
  sw->add_option("--size", s.size, "message size of each all-reduce")->capture_default_str();
  sw->add_option("--backend", s.backend, "nccl or cpu")
      ->check(CLI::IsMember({"nccl", "cpu"}))
      ->capture_default_str();
  sw->add_option("--nccl-library", s.nccl_library, "libnccl.so.2 for the runs")
      ->envname("DEEPOPS_BENCH_NCCL_LIBRARY");
  sw->add_option("--tasks-per-node", s.tasks_per_node, "ranks per node")->capture_default_str();
  sw->add_option("-g,--ngpus", s.gpus, "GPUs per rank (nccl)")->capture_default_str();
  sw->add_option("-n,--iters", s.iters, "timed iterations per run")->capture_default_str();
  sw->add_option("-w,--warmup_iters", s.warmup, "untimed iterations first")->capture_default_str();
  sw->add_option("--threshold", s.threshold, "outlier below this fraction of the others")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  sw->add_option("--expect", s.expect, "also flag nodes below this busbw (GB/s)");
  sw->add_option("--timeout", s.timeout_s, "seconds one run may take")->capture_default_str();
  sw->add_option("--parallel", s.parallel, "runs at once (default: a whole round of pairs)");
  sw->add_option("--srun-arg", s.srun_args, "an option for every srun (repeatable)");
  sw->add_option("-J,--json", s.json_out, "also write the findings as JSON to FILE");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("deepops-bench: validate a cluster's all-reduce bandwidth", "deepops-bench");
  app.set_version_flag("--version", "deepops-bench " DEEPOPS_VERSION);
  app.require_subcommand(1);
  AllReduceArgs a;
  SweepArgs s;
  add_allreduce(app, a);
  add_sweep(app, s);
  // mpirun's spelling: CLI11 takes one-letter short options only.
  std::vector<std::string> words(argv, argv + argc);
  for (auto& w : words) {
    if (w == "-np") w = "--np";
  }
  std::vector<char*> args;
  for (auto& w : words) args.push_back(w.data());
  args.push_back(nullptr);
  try {
    app.parse(argc, args.data());
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, or the error and a hint
    return rc == 0 ? 0 : 2;      // usage errors are 2, like setup errors
  }
  try {
    if (app.got_subcommand("sweep")) return run_sweep(s);
    a.corrupt = std::getenv("DEEPOPS_BENCH_TEST_CORRUPT") != nullptr;
    a.profile_dirs = profile_dirs();
    if (a.backend == "cpu" && a.gpus != 1) {
      throw SetupError("-g is for the nccl backend; the cpu one runs one rank per process");
    }
    return run_allreduce(a, args.data());
  } catch (const SetupError& e) {
    if (*e.what()) std::fprintf(stderr, "deepops-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepops-bench: %s\n", e.what());
    return 2;
  }
}
