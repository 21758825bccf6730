#include "allreduce_command.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "backend.hpp"
#include "datatype.hpp"
#include "launch.hpp"
#include "local_ranks.hpp"
#include "metrics.hpp"
#include "nccl_backend.hpp"
#include "profile.hpp"
#include "rendezvous.hpp"
#include "report.hpp"
#include "ring.hpp"
#include "sizes.hpp"

namespace deepops::bench {
namespace {

using Clock = std::chrono::steady_clock;

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
  // Capped so that the int32 sum over every rank cannot overflow.
  const size_t cap = (size_t{1} << 30) / static_cast<size_t>(ring.size());
  int32_t w = static_cast<int32_t>(std::min(wrong, cap));
  ring.allreduce(&w, 1, DataType::i32, RedOp::sum);
  return static_cast<size_t>(w);
}

// One message size, out of place then in place: checked once, then timed.
SizeResult run_size(AllReduceBackend& backend, Ring& ring, const AllReduceArgs& a, size_t bytes,
                    DataType t, RedOp op) {
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

nlohmann::json to_json(const std::vector<SizeResult>& results, int nranks, int nodes,
                       const Expectation& expected, const Verdict& v) {
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
  return {{"ranks", nranks},
          {"nodes", nodes},
          {"results", rows},
          {"expected_busbw", expected.busbw},
          {"pass_busbw", expected.minimum},
          {"expected_basis", expected.why},
          {"pass", v.pass},
          {"verdict", v.line}};
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

// --expect, else the profile scaled to the nodes and GPUs in use, else none.
Expectation expectation(const AllReduceArgs& a, int nodes, int ranks_per_node) {
  if (a.expect > 0) return {a.expect, a.expect, ""};
  if (a.profile.empty()) return {};
  return expected_busbw(load_profile(a.profile, a.profile_dirs), nodes, ranks_per_node);
}

// A line on stderr now and then while a run is long, so that a batch log
// shows it alive and how far it got.
class Progress {
 public:
  explicit Progress(bool on) : on_(on) {}
  void before(size_t bytes, size_t index, size_t total) {
    const auto now = Clock::now();
    if (!on_ || now - start_ < kQuiet || now - last_ < kEvery) return;
    last_ = now;
    std::fprintf(stderr, "deepops-bench: %zu bytes next (%zu of %zu sizes), %.0f s so far\n", bytes,
                 index + 1, total, std::chrono::duration<double>(now - start_).count());
  }

 private:
  static constexpr auto kQuiet = std::chrono::seconds(10);
  static constexpr auto kEvery = std::chrono::seconds(10);
  bool on_;
  Clock::time_point start_ = Clock::now(), last_ = Clock::now() - kEvery;
};

std::optional<std::string> env(const std::string& k) {
  const char* v = std::getenv(k.c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

// The same on every rank of one run, different for another run that could
// reach the same rendezvous port: its launcher's job and step, or the -np
// parent's pid.
uint64_t run_token(const LaunchInfo& where) {
  std::string id = where.launcher + "/" + std::to_string(where.size);
  for (const char* v : {"SLURM_JOB_ID", "SLURM_STEP_ID", "OMPI_MCA_ess_base_jobid", "PMI_JOBID",
                        "DEEPOPS_BENCH_PARENT"}) {
    id += "/" + env_or(v, "");
  }
  return std::hash<std::string>{}(id);
}

int run_rank(const AllReduceArgs& a, const LaunchInfo& where) {
  const DataType t = parse_type(a.type);
  const RedOp op = parse_op(a.op);
  const auto sizes = message_sizes(parse_size(a.min_bytes), parse_size(a.max_bytes), a.factor,
                                   parse_size(a.increment), type_size(t));
  if (!a.profile.empty()) load_profile(a.profile, a.profile_dirs);  // a bad name fails first
  const std::string rv =
      a.rendezvous.empty() ? default_rendezvous(where, env, slurm_first_host) : a.rendezvous;
  const size_t colon = rv.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--rendezvous wants HOST:PORT");
  const std::string rank0_host =
      where.rank == 0 ? rv.substr(0, colon) : reachable_address(rv.substr(0, colon));
  // -np hands rank 0 the rendezvous socket it opened: no port race.
  const int listener =
      where.rank == 0 ? std::atoi(env_or("DEEPOPS_BENCH_LISTEN_FD", "-1").c_str()) : -1;
  Ring ring = Ring::join(where.rank, where.size, rank0_host, std::stoi(rv.substr(colon + 1)),
                         std::chrono::seconds(60), listener, run_token(where));
  const size_t largest = sizes.empty() ? 0 : sizes.back();
  std::unique_ptr<AllReduceBackend> backend =
      a.backend == "cpu" ? make_cpu_backend(ring, largest)
                         : make_nccl_backend(ring, where, {a.gpus, largest, a.nccl_library});
  const int nranks = backend->ranks();
  const auto placement = gather_text(ring, backend->placement());
  const auto hosts = gather_text(ring, node_name(), 255);
  const int nodes = static_cast<int>(std::set<std::string>(hosts.begin(), hosts.end()).size());
  const Expectation expected = expectation(a, nodes, nranks / std::max(nodes, 1));
  const bool leader = where.rank == 0, table = a.json_out != "-";
  if (leader && table) {
    std::printf("# deepops-bench allreduce: %d rank%s on %d node(s) (%s), backend %s, %s %s\n",
                nranks, nranks == 1 ? "" : "s", nodes, where.launcher.c_str(),
                backend->name().c_str(), type_name(t), op_name(op));
    for (const auto& lines : placement) print_prefixed("#   ", lines);
    std::printf("%s%s", table_header().c_str(), table_notes(nranks).c_str());
    std::fflush(stdout);  // every rank has joined: shown now, not after the first size
  }
  std::vector<SizeResult> results;
  Progress progress(leader);
  for (size_t i = 0; i < sizes.size(); ++i) {
    progress.before(sizes[i], i, sizes.size());
    results.push_back(run_size(*backend, ring, a, sizes[i], t, op));
    if (leader && table) {
      std::printf("%s", table_row(results.back(), nranks).c_str());
      std::fflush(stdout);
    }
  }
  const Verdict v = judge(results, nranks, expected);
  if (!leader) return v.pass ? 0 : 1;
  if (table) std::printf("%s%s\n", table_footer(results, nranks).c_str(), v.line.c_str());
  const auto json = to_json(results, nranks, nodes, expected, v);
  if (a.json_out == "-") {
    std::printf("%s\n", json.dump(2).c_str());
  } else if (!a.json_out.empty()) {
    write_atomically(a.json_out, json.dump(2) + "\n");
  }
  if (!a.prometheus_out.empty()) {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    write_atomically(a.prometheus_out,
                     prometheus_text({a.backend, nranks, nodes, &results, expected, v, now}));
  }
  return v.pass ? 0 : 1;
}

// -np N: N ranks on this machine, meeting at a free loopback port, under
// this process's supervision (local_ranks.hpp): none outlives the run.
int run_local(const AllReduceArgs& a, char** argv) {
  // A node without a GPU or NCCL says so once, not once per rank.
  if (a.backend == "nccl") probe_nccl({a.gpus, 0, a.nccl_library});
  auto [rendezvous, port] = listen_on(0);
  std::vector<LocalRank> ranks(static_cast<size_t>(a.np));
  for (int r = 0; r < a.np; ++r) {
    ranks[static_cast<size_t>(r)].env = {{"DEEPOPS_BENCH_RANK", std::to_string(r)},
                                         {"DEEPOPS_BENCH_SIZE", std::to_string(a.np)},
                                         {"MASTER_ADDR", "127.0.0.1"},
                                         {"MASTER_PORT", std::to_string(port)},
                                         {"DEEPOPS_BENCH_PARENT", std::to_string(getpid())}};
  }
  // Rank 0 keeps the listening socket across its exec; the parent closes its
  // own copy once the ranks run (holding it would keep the port open, late
  // ranks queued forever, after rank 0 died).
  ranks[0].env.emplace_back("DEEPOPS_BENCH_LISTEN_FD", std::to_string(rendezvous.get()));
  ranks[0].keep_fd = rendezvous.get();
  return run_local_ranks(ranks, argv, std::chrono::seconds(5),
                         [&rendezvous] { rendezvous = Socket(); });
}

// Everything a rank would refuse, refused once, before anything forks or
// connects: types, reductions, sizes, the profile.
void check_inputs(const AllReduceArgs& a) {
  const DataType t = parse_type(a.type);
  (void)parse_op(a.op);
  (void)message_sizes(parse_size(a.min_bytes), parse_size(a.max_bytes), a.factor,
                      parse_size(a.increment), type_size(t));
  if (!a.profile.empty()) load_profile(a.profile, a.profile_dirs);
}

}  // namespace

int run_allreduce(const AllReduceArgs& a, char** argv) {
  check_inputs(a);
  const LaunchInfo where = detect_launch(env);
  if (a.np > 0 && where.launcher != "local") return run_local(a, argv);
  return run_rank(a, where);
}

}  // namespace deepops::bench
