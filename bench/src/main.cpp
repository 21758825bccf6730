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
#include "util/cli_help.hpp"
#include "validate_command.hpp"

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
colon-separated, looked in first); see man deepops-bench.

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

const char* kValidateFooter = R"(
Inside an allocation (salloc -N N, or an sbatch script), validates it in up
to three stages, each with its table:
  1. every node's own all-reduce, all nodes at once: NCCL over the node's GPUs
     (--tasks-per-node ranks of -g GPUs), or the TCP ring between --node-tasks
     local ranks (cpu, default 2); judged by the profile's intra-node figure
     (or --expect-node) and against the other nodes: below --threshold times
     their median is SLOW. What looks slow runs again alone first.
  2. the ring over all nodes, judged by the profile's inter-node figure (or
     --expect), and on correctness.
  3. when the ring failed, fell short of its figure or had no figure to meet
     (--sweep auto), the sweep over every pair of nodes (deepops-bench
     sweep), which names the slow node or link.
One verdict line ends the run: PASS, or FAIL naming each node and link and
the stage that found it. Exit status 0 on PASS, 1 on FAIL, 2 when it cannot
run, 130 when interrupted (every srun is stopped). -J writes the whole run as
JSON, --prometheus as node_exporter textfile metrics. Profiles are looked up
in $DEEPOPS_BENCH_PROFILES, then /etc/deepops/bench; see man deepops-bench.

Examples:
  salloc -N16 deepops-bench validate --profile dgx-h100 --tasks-per-node 8 \
      --srun-arg=--gpus-per-task=1 --size 1G
  salloc -N4 deepops-bench validate --backend cpu --size 64M -J validate.json)";

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
  ar->add_option("-b,--minbytes", a.min_bytes, "smallest message (K, M, G)")
      ->type_name("SIZE")
      ->capture_default_str();
  ar->add_option("-e,--maxbytes", a.max_bytes, "largest message")
      ->type_name("SIZE")
      ->capture_default_str();
  ar->add_option("-f,--stepfactor", a.factor, "multiply the size by this")
      ->type_name("FACTOR")
      ->capture_default_str();
  ar->add_option("-i,--stepbytes", a.increment, "or add this, when -f is 1")->type_name("SIZE");
  ar->add_option("-n,--iters", a.iters, "timed iterations per size")->capture_default_str();
  ar->add_option("-w,--warmup_iters", a.warmup, "untimed iterations first")->capture_default_str();
  ar->add_option("-c,--check", a.check, "check every result (0: no)")->capture_default_str();
  ar->add_option("-d,--datatype", a.type, "float, half, bfloat16, int32")
      ->type_name("TYPE")
      ->capture_default_str();
  ar->add_option("-o,--op", a.op, "sum, prod, min, max")->type_name("OP")->capture_default_str();
  ar->add_option("-a,--average", a.average, "time over ranks: 0 rank 0, 1 mean, 2 min, 3 max")
      ->capture_default_str();
  ar->add_option("-g,--ngpus", a.gpus, "GPUs per process (nccl backend)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  ar->add_option("-J,--json", a.json_out, "also write the results as JSON to FILE (-: stdout)")
      ->type_name("FILE");
  ar->add_option("--prometheus", a.prometheus_out, "write node_exporter textfile metrics to FILE")
      ->type_name("FILE");
  ar->add_option("--backend", a.backend, "nccl (GPUs) or cpu (a TCP ring between hosts)")
      ->check(CLI::IsMember({"nccl", "cpu"}))
      ->capture_default_str();
  ar->add_option("--nccl-library", a.nccl_library, "libnccl.so.2 to load (default: the loader's)")
      ->type_name("FILE")
      ->envname("DEEPOPS_BENCH_NCCL_LIBRARY");
  ar->add_option("--np", a.np,
                 "fork this many ranks on this machine, 1 to " + std::to_string(kMaxLocalRanks) +
                     " (also -np, as mpirun)")
      ->type_name("N")
      ->check(CLI::Range(1, kMaxLocalRanks));
  ar->add_option("--rendezvous", a.rendezvous, "where rank 0 listens")->type_name("HOST:PORT");
  auto* expect =
      ar->add_option("--expect", a.expect, "the busbw (GB/s) the largest message must reach")
          ->type_name("GB/s");
  ar->add_option("--profile", a.profile, "judge against this profile (dgx-h100, or a file)")
      ->type_name("NAME")
      ->excludes(expect);
}

// The options sweep and validate share: how each srun'd all-reduce runs.
void add_run_options(CLI::App* cmd, SweepArgs& s) {
  cmd->add_option("--nodes", s.nodes, "a Slurm hostlist (default: the allocation's nodes)")
      ->type_name("HOSTLIST");
  cmd->add_option("--size", s.run.size, "message size of each all-reduce (K, M, G)")
      ->type_name("SIZE")
      ->capture_default_str();
  cmd->add_option("--backend", s.run.backend, "nccl or cpu")
      ->type_name("nccl|cpu")
      ->check(CLI::IsMember({"nccl", "cpu"}))
      ->capture_default_str();
  cmd->add_option("--nccl-library", s.run.nccl_library, "libnccl.so.2 for the runs")
      ->type_name("FILE")
      ->envname("DEEPOPS_BENCH_NCCL_LIBRARY");
  cmd->add_option("--tasks-per-node", s.tasks_per_node, "ranks per node")
      ->type_name("N")
      ->check(CLI::Range(1, kMaxLocalRanks))
      ->capture_default_str();
  cmd->add_option("-g,--ngpus", s.run.gpus, "GPUs per rank (nccl)")
      ->type_name("N")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("-n,--iters", s.run.iters, "timed iterations per run")
      ->type_name("N")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("-w,--warmup_iters", s.run.warmup, "untimed iterations first")
      ->type_name("N")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--threshold", s.threshold, "outlier below this fraction of the others")
      ->type_name("FRACTION")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_option("--timeout", s.run.timeout_s, "seconds one run may take")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  cmd->add_option("--parallel", s.parallel, "runs at once (default: a whole round)")
      ->type_name("N")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--srun-arg", s.run.srun_args, "an option for every srun (repeatable)")
      ->type_name("OPTION");
}

void add_sweep(CLI::App& app, SweepArgs& s) {
  auto* sw = app.add_subcommand("sweep", "find the slow node or link of an allocation");
  sw->footer(kSweepFooter);
  add_run_options(sw, s);
  sw->add_option("--expect", s.expect, "also flag nodes below this busbw (GB/s)")
      ->type_name("GB/s");
  sw->add_option("-J,--json", s.json_out, "also write the findings as JSON to FILE")
      ->type_name("FILE");
}

void add_validate(CLI::App& app, ValidateArgs& v) {
  auto* va =
      app.add_subcommand("validate", "validate an allocation: each node, the ring, the links");
  va->footer(kValidateFooter);
  v.sweep.run.size = "64M";
  add_run_options(va, v.sweep);
  va->add_option("--node-tasks", v.node_tasks,
                 "ranks of each node's own all-reduce (default: --tasks-per-node; cpu: 2 or more)")
      ->type_name("N")
      ->check(CLI::Range(1, kMaxLocalRanks));
  auto* profile =
      va->add_option("--profile", v.profile, "judge both stages by this profile (or a file)")
          ->type_name("NAME");
  va->add_option("--expect", v.expect, "the busbw the ring of all nodes must reach")
      ->type_name("GB/s")
      ->excludes(profile);
  va->add_option("--expect-node", v.expect_node, "the busbw each node's own all-reduce must reach")
      ->type_name("GB/s")
      ->excludes(profile);
  va->add_option("--sweep", v.sweep_mode, "when to sweep the pairs: auto, always, never")
      ->type_name("WHEN")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  va->add_option("-J,--json", v.sweep.json_out, "write the whole run as JSON to FILE (-: stdout)")
      ->type_name("FILE");
  va->add_option("--prometheus", v.prometheus_out, "write node_exporter textfile metrics to FILE")
      ->type_name("FILE");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("deepops-bench: validate a cluster's all-reduce bandwidth", "deepops-bench");
  app.set_version_flag("--version", "deepops-bench " DEEPOPS_VERSION);
  app.require_subcommand(1);
  AllReduceArgs a;
  SweepArgs s;
  ValidateArgs v;
  add_allreduce(app, a);
  add_sweep(app, s);
  add_validate(app, v);
  deepops::make_help_readable(app);
  app.footer("See man deepops-bench.");
  // mpirun's spelling: CLI11 takes one-letter short options only.
  std::vector<std::string> words(argv, argv + argc);
  for (auto& w : words) {
    if (w == "-np") w = "--np";
  }
  std::vector<char*> args;
  for (auto& w : words) args.push_back(w.data());
  args.push_back(nullptr);
  // Usage errors are 2, like setup errors.
  if (const int status = deepops::parse_or_explain(app, "deepops-bench", 2, argc, args.data());
      status >= 0) {
    return status;
  }
  try {
    if (app.got_subcommand("sweep")) return run_sweep(s);
    if (app.got_subcommand("validate")) {
      v.profile_dirs = profile_dirs();
      return run_validate(v);
    }
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
