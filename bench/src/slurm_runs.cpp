#include "slurm_runs.hpp"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend.hpp"

namespace deepops::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSlurmQuery = std::chrono::seconds(60);

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Slurm's own expansion and addresses: node names need not resolve, and
// NodeAddr is where slurmd (and so our ranks) listen.
std::vector<std::string> expand_hostlist(const std::string& hostlist) {
  return lines_of(run_and_read({"scontrol", "show", "hostnames", hostlist}, kSlurmQuery));
}

std::string address_of(const std::string& node) {
  std::string addr = slurm_node_address(node);
  return addr.empty() ? node : addr;
}

void stop_children(int) { Subprocess::stop_all(); }

}  // namespace

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

int run_stopping_on_signals(const char* what, const std::function<int()>& command) {
  struct sigaction act {};
  act.sa_handler = stop_children;
  sigaction(SIGINT, &act, nullptr);
  sigaction(SIGTERM, &act, nullptr);
  try {
    return command();
  } catch (const Interrupted&) {
    std::fflush(stdout);
    std::fprintf(stderr, "deepops-bench: %s interrupted; its runs were stopped\n", what);
    return 130;
  }
}

SlurmRuns::SlurmRuns(const std::string& nodes, const char* what, size_t min_nodes) {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) {
    throw SetupError(std::string(what) +
                     " runs inside an allocation, as its srun steps do: "
                     "salloc -N4 deepops-bench " +
                     what + " (or in an sbatch script)");
  }
  std::string list = nodes;
  if (list.empty()) {
    list = std::getenv("SLURM_JOB_NODELIST") ? std::getenv("SLURM_JOB_NODELIST") : "";
  }
  names_ = expand_hostlist(list);
  if (names_.size() < min_nodes) {
    throw SetupError(std::string(what) + " needs at least " + std::to_string(min_nodes) +
                     " nodes, got '" + list + "'");
  }
  for (const auto& n : names_) addresses_.push_back(address_of(n));
  port_base_ = 20000 + static_cast<int>(std::strtoul(job, nullptr, 10) * 37 % 10000);
  self_ = std::filesystem::read_symlink("/proc/self/exe").string();
}

Subprocess SlurmRuns::start(const std::vector<int>& nodes, int slot, int tasks_per_node,
                            const RunOptions& o) const {
  std::vector<std::string> names;
  for (int i : nodes) names.push_back(names_[static_cast<size_t>(i)]);
  const int n = static_cast<int>(nodes.size());
  std::vector<std::string> argv = {
      "srun", "--nodes=" + std::to_string(n), "--ntasks=" + std::to_string(n * tasks_per_node),
      "--ntasks-per-node=" + std::to_string(tasks_per_node), "--nodelist=" + join(names, ","),
      "--kill-on-bad-exit=1", "--quiet", "--label",
      // Rank 0 is on the first node in Slurm's order, which `nodes` keeps.
      "--export=ALL,MASTER_ADDR=" + addresses_[static_cast<size_t>(nodes.front())] +
          ",MASTER_PORT=" + std::to_string(port_base_ + slot)};
  argv.insert(argv.end(), o.srun_args.begin(), o.srun_args.end());
  const std::vector<std::string> bench = {self_,
                                          "allreduce",
                                          "--backend=" + o.backend,
                                          "-b",
                                          o.size,
                                          "-e",
                                          o.size,
                                          "-n",
                                          std::to_string(o.iters),
                                          "-w",
                                          std::to_string(o.warmup),
                                          "-g",
                                          std::to_string(o.gpus),
                                          "-J",
                                          "-"};
  argv.insert(argv.end(), bench.begin(), bench.end());
  argv.insert(argv.end(), o.allreduce_args.begin(), o.allreduce_args.end());
  if (!o.nccl_library.empty()) argv.push_back("--nccl-library=" + o.nccl_library);
  return Subprocess(argv);
}

PairResult SlurmRuns::finish(Subprocess& run, int first, int second, Clock::time_point deadline,
                             const RunOptions& o) const {
  PairResult r{first, second, 0, false, "", false, ""};
  const int rc = run.wait(deadline);
  if (rc == 130) throw Interrupted();
  std::string problem;
  if (auto json = rank0_json(run.out())) {
    try {
      const auto j = nlohmann::json::parse(*json);
      const auto& last = j.at("results").back().at("out_of_place");
      r.busbw = last.at("busbw").get<double>();
      const auto wrong = last.at("wrong").get<size_t>();
      r.ok = wrong == 0;
      if (!r.ok) r.problem = std::to_string(wrong) + " wrong elements";
      r.passed = j.at("pass").get<bool>();
      r.verdict = j.at("verdict").get<std::string>();
      return r;
    } catch (const std::exception& e) {
      problem = std::string("unreadable result (") + e.what() + ")";
    }
  }
  std::string err = run.err();
  while (!err.empty() && err.back() == '\n') err.pop_back();
  if (err.size() > 400) err = "..." + err.substr(err.size() - 400);
  if (rc == 124) {
    r.problem = "no result in " + std::to_string(o.timeout_s) + " s (--timeout)";
  } else if (problem.empty()) {
    r.problem = "exit " + std::to_string(rc) + (rc == 0 ? ", but no result printed" : "") +
                (err.empty() ? "" : ": " + err);
  } else {
    r.problem = problem;
  }
  return r;
}

PairResult SlurmRuns::run(const std::vector<int>& nodes, int tasks_per_node,
                          const RunOptions& o) const {
  Subprocess run = start(nodes, 0, tasks_per_node, o);
  return finish(run, nodes.front(), nodes.back(), Clock::now() + std::chrono::seconds(o.timeout_s),
                o);
}

}  // namespace deepops::bench
