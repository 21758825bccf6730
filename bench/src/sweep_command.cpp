#include "sweep_command.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "backend.hpp"
#include "metrics.hpp"
#include "subprocess.hpp"
#include "sweep.hpp"

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

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

// Ctrl-C or SIGTERM: every srun is stopped and the sweep ends, exit 130.
struct Interrupted {};

class Sweep {
 public:
  explicit Sweep(const SweepArgs& a) : a_(a) {
    const char* job = std::getenv("SLURM_JOB_ID");
    if (!job) {
      throw SetupError(
          "sweep runs inside an allocation, as its srun steps do: "
          "salloc -N4 deepops-bench sweep (or in an sbatch script)");
    }
    std::string list = a.nodes;
    if (list.empty())
      list = std::getenv("SLURM_JOB_NODELIST") ? std::getenv("SLURM_JOB_NODELIST") : "";
    names_ = expand_hostlist(list);
    if (names_.size() < 2) throw SetupError("sweep needs at least 2 nodes, got '" + list + "'");
    for (const auto& n : names_) addresses_.push_back(address_of(n));
    port_base_ = 20000 + static_cast<int>(std::strtoul(job, nullptr, 10) * 37 % 10000);
    self_ = std::filesystem::read_symlink("/proc/self/exe").string();
  }

  // Starts one all-reduce over `nodes` (indexes, Slurm's order); `slot`
  // picks its rendezvous port among those running at once.
  Subprocess start(const std::vector<int>& nodes, int slot) const {
    std::vector<std::string> names;
    for (int i : nodes) names.push_back(names_[static_cast<size_t>(i)]);
    const int n = static_cast<int>(nodes.size());
    std::vector<std::string> argv = {
        "srun", "--nodes=" + std::to_string(n), "--ntasks=" + std::to_string(n * a_.tasks_per_node),
        "--ntasks-per-node=" + std::to_string(a_.tasks_per_node), "--nodelist=" + join(names, ","),
        "--kill-on-bad-exit=1", "--quiet", "--label",
        // Rank 0 is on the first node in Slurm's order, which `nodes` keeps.
        "--export=ALL,MASTER_ADDR=" + addresses_[static_cast<size_t>(nodes.front())] +
            ",MASTER_PORT=" + std::to_string(port_base_ + slot)};
    argv.insert(argv.end(), a_.srun_args.begin(), a_.srun_args.end());
    const std::vector<std::string> bench = {self_,
                                            "allreduce",
                                            "--backend=" + a_.backend,
                                            "-b",
                                            a_.size,
                                            "-e",
                                            a_.size,
                                            "-n",
                                            std::to_string(a_.iters),
                                            "-w",
                                            std::to_string(a_.warmup),
                                            "-g",
                                            std::to_string(a_.gpus),
                                            "-J",
                                            "-"};
    argv.insert(argv.end(), bench.begin(), bench.end());
    if (!a_.nccl_library.empty()) argv.push_back("--nccl-library=" + a_.nccl_library);
    return Subprocess(argv);
  }

  // The run's busbw, or why there is none. `deadline` is shared by the runs
  // started together, so that k hung runs cost one timeout, not k.
  PairResult finish(Subprocess& run, int first, int second, Clock::time_point deadline) const {
    PairResult r{first, second, 0, false, ""};
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
        return r;
      } catch (const std::exception& e) {
        problem = std::string("unreadable result (") + e.what() + ")";
      }
    }
    std::string err = run.err();
    while (!err.empty() && err.back() == '\n') err.pop_back();
    if (err.size() > 400) err = "..." + err.substr(err.size() - 400);
    if (rc == 124) {
      r.problem = "no result in " + std::to_string(a_.timeout_s) + " s (--timeout)";
    } else if (problem.empty()) {
      r.problem = "exit " + std::to_string(rc) + (rc == 0 ? ", but no result printed" : "") +
                  (err.empty() ? "" : ": " + err);
    } else {
      r.problem = problem;
    }
    return r;
  }

  Clock::time_point deadline() const { return Clock::now() + std::chrono::seconds(a_.timeout_s); }

  // What looked slow runs again on its own before it is named: a round's
  // runs share the login node, the switch and, in a lab, the cores, and one
  // noisy run must not name a node or a link. The better figure counts.
  void confirm(std::vector<PairResult>& pairs, const SweepAnalysis& first) const {
    for (auto& p : pairs) {
      const bool slow_node =
          first.nodes[static_cast<size_t>(p.a)].slow || first.nodes[static_cast<size_t>(p.b)].slow;
      const bool slow_link =
          std::any_of(first.slow_links.begin(), first.slow_links.end(),
                      [&](const LinkVerdict& l) { return l.a == p.a && l.b == p.b; });
      if (!p.ok || !(slow_node || slow_link)) continue;
      Subprocess run = start({p.a, p.b}, 0);
      const PairResult again = finish(run, p.a, p.b, deadline());
      std::printf("# %s + %s again, alone: %.2f GB/s (was %.2f)\n",
                  names_[static_cast<size_t>(p.a)].c_str(),
                  names_[static_cast<size_t>(p.b)].c_str(), again.busbw, p.busbw);
      if (again.ok && again.busbw > p.busbw) p = again;
    }
  }

  PairResult ring(const std::vector<int>& nodes) const {
    Subprocess run = start(nodes, 0);
    return finish(run, nodes.front(), nodes.back(), deadline());
  }

  // Each round's pairs at once, at most --parallel of them at a time.
  std::vector<PairResult> pairs() const {
    std::vector<PairResult> results;
    const size_t most = a_.parallel > 0 ? static_cast<size_t>(a_.parallel) : SIZE_MAX;
    for (const auto& round : pair_rounds(static_cast<int>(names_.size()))) {
      for (size_t first = 0; first < round.size(); first += most) {
        const size_t end = std::min(round.size(), first + most);
        std::vector<Subprocess> runs;
        for (size_t k = first; k < end; ++k) {
          runs.push_back(start({round[k].first, round[k].second}, static_cast<int>(k) + 1));
        }
        const auto batch_deadline = deadline();
        for (size_t k = first; k < end; ++k) {
          results.push_back(
              finish(runs[k - first], round[k].first, round[k].second, batch_deadline));
          print_pair(results.back());
        }
      }
    }
    return results;
  }

  void print_pair(const PairResult& p) const {
    std::printf("  %-16s %-16s %12.2f   %s\n", names_[static_cast<size_t>(p.a)].c_str(),
                names_[static_cast<size_t>(p.b)].c_str(), p.busbw,
                p.ok ? "ok" : ("FAILED: " + p.problem).c_str());
    std::fflush(stdout);
  }

  const std::vector<std::string>& names() const { return names_; }

 private:
  const SweepArgs& a_;
  std::vector<std::string> names_, addresses_;
  int port_base_ = 0;
  std::string self_;
};

std::string ring_line(const char* what, const PairResult& r) {
  char line[512];
  if (r.ok) {
    std::snprintf(line, sizeof(line), "# %s: busbw %.2f GB/s", what, r.busbw);
  } else {
    std::snprintf(line, sizeof(line), "# %s: FAILED: %s", what, r.problem.c_str());
  }
  return line;
}

nlohmann::json to_json(const std::vector<std::string>& names, const PairResult& all,
                       const std::vector<PairResult>& pairs, const SweepAnalysis& s) {
  nlohmann::json j;
  j["nodes"] = names;
  j["ring_all"] = {{"busbw", all.busbw}, {"ok", all.ok}, {"problem", all.problem}};
  for (const auto& p : pairs) {
    j["pairs"].push_back({{"a", names[static_cast<size_t>(p.a)]},
                          {"b", names[static_cast<size_t>(p.b)]},
                          {"busbw", p.busbw},
                          {"ok", p.ok},
                          {"problem", p.problem}});
  }
  for (const auto& n : s.nodes) {
    j["node_verdicts"].push_back({{"node", n.name},
                                  {"best", n.best},
                                  {"median", n.median},
                                  {"slow", n.slow},
                                  {"failed", n.failed}});
  }
  j["reference"] = s.reference;
  j["findings"] = s.findings;
  j["pass"] = s.pass;
  return j;
}

void stop_children(int) { Subprocess::stop_all(); }

}  // namespace

namespace {

int sweep_nodes(const SweepArgs& a) {
  Sweep sweep(a);
  const auto& names = sweep.names();
  const int n = static_cast<int>(names.size());
  std::printf(
      "# deepops-bench sweep: %d nodes (%s), backend %s, %s per all-reduce, %d task(s) "
      "per node\n",
      n, join(names, ",").c_str(), a.backend.c_str(), a.size.c_str(), a.tasks_per_node);
  std::vector<int> everyone;
  for (int i = 0; i < n; ++i) everyone.push_back(i);
  const PairResult all = sweep.ring(everyone);
  std::printf("%s\n", ring_line("ring of all nodes", all).c_str());
  std::printf("# pairs, busbw of the out-of-place all-reduce (GB/s):\n");
  std::vector<PairResult> pairs = sweep.pairs();
  SweepAnalysis s = analyse_sweep(names, pairs, a.threshold, a.expect);
  if (!s.pass) {
    sweep.confirm(pairs, s);
    s = analyse_sweep(names, pairs, a.threshold, a.expect);
  }
  std::printf("# nodes: best pair and median over its pairs (GB/s); reference %.2f:\n",
              s.reference);
  for (const auto& v : s.nodes) {
    std::printf("  %-16s %12.2f %12.2f   %s\n", v.name.c_str(), v.best, v.median,
                v.failed ? "FAILED"
                : v.slow ? "SLOW"
                         : "ok");
  }
  std::vector<int> rest;
  std::vector<std::string> left_out;
  for (int i = 0; i < n; ++i) {
    const auto& v = s.nodes[static_cast<size_t>(i)];
    if (v.slow || v.failed) {
      left_out.push_back(v.name);
    } else {
      rest.push_back(i);
    }
  }
  if (!left_out.empty() && rest.size() >= 2) {
    const std::string what = "ring without " + join(left_out, ",");
    std::printf("%s\n", ring_line(what.c_str(), sweep.ring(rest)).c_str());
  }
  for (const auto& f : s.findings) std::printf("%s\n", f.c_str());
  if (s.pass) {
    std::printf(
        "PASS: %d nodes, %zu pairs, no outlier (every node's best pair within %.0f%% of "
        "%.2f GB/s)\n",
        n, pairs.size(), 100 * a.threshold, s.reference);
  } else {
    std::printf("FAIL: %zu finding(s) above\n", s.findings.size());
  }
  if (!a.json_out.empty())
    write_atomically(a.json_out, to_json(names, all, pairs, s).dump(2) + "\n");
  return s.pass ? 0 : 1;
}

}  // namespace

int run_sweep(const SweepArgs& a) {
  struct sigaction act {};
  act.sa_handler = stop_children;
  sigaction(SIGINT, &act, nullptr);
  sigaction(SIGTERM, &act, nullptr);
  try {
    return sweep_nodes(a);
  } catch (const Interrupted&) {
    std::fflush(stdout);
    std::fprintf(stderr, "deepops-bench: sweep interrupted; its runs were stopped\n");
    return 130;
  }
}

}  // namespace deepops::bench
