#include "validate_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backend.hpp"
#include "metrics.hpp"
#include "profile.hpp"
#include "validate.hpp"

namespace deepops::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A node's own all-reduce needs two ranks to move anything: the cpu
// backend's one rank per process would measure a local copy.
int node_tasks(const ValidateArgs& a) {
  if (a.node_tasks > 0) return a.node_tasks;
  if (a.sweep.run.backend == "cpu") return std::max(2, a.sweep.tasks_per_node);
  return a.sweep.tasks_per_node;
}

// The figure each run judges itself by: the profile scaled to what the run
// spans, or the figure given for that stage.
std::vector<std::string> figure_args(const ValidateArgs& a, double expect) {
  if (!a.profile.empty()) return {"--profile", a.profile};
  if (expect > 0) return {"--expect", std::to_string(expect)};
  return {};
}

void print_node_row(const std::string& name, const PairResult& r, const char* state) {
  std::printf("  %-16s %12.2f   %s\n", name.c_str(), r.busbw, state);
}

class Validation {
 public:
  Validation(const ValidateArgs& a, const SlurmRuns& runs) : a_(a), runs_(runs) {
    summary_.names = runs.names();
    summary_.threshold = a.sweep.threshold;
  }

  // Stage 1: every node's own all-reduce, at most --parallel at once, then
  // what looked slow or failed again alone (the better figure counts): the
  // nodes of a lab, or the login node's sruns, share cores.
  void node_stage() {
    RunOptions o = a_.sweep.run;
    o.allreduce_args = figure_args(a_, a_.expect_node);
    const int tasks = node_tasks(a_);
    // The TCP ring's ranks mostly wait on their sockets: a node's two of
    // them fit an allocation of one CPU per node (salloc -N4's default).
    if (o.backend == "cpu") o.srun_args.insert(o.srun_args.begin(), "--overcommit");
    const size_t n = summary_.names.size();
    std::printf("# stage 1: each node's own all-reduce (%d rank(s) each%s), all nodes at once\n",
                tasks, a_.sweep.run.backend == "cpu" ? ", the TCP ring over loopback" : "");
    if (tasks * a_.sweep.run.gpus == 1) {
      std::printf("#   one rank per node: busbw is 0 by definition; correctness only\n");
    }
    std::vector<PairResult> results(n);
    const size_t most = a_.sweep.parallel > 0 ? static_cast<size_t>(a_.sweep.parallel) : SIZE_MAX;
    for (size_t first = 0; first < n; first += most) {
      const size_t end = std::min(n, first + most);
      std::vector<Subprocess> started;
      for (size_t i = first; i < end; ++i) {
        started.push_back(runs_.start({static_cast<int>(i)}, static_cast<int>(i) + 1, tasks, o));
      }
      const auto deadline = Clock::now() + std::chrono::seconds(o.timeout_s);
      for (size_t i = first; i < end; ++i) {
        const int node = static_cast<int>(i);
        results[i] = runs_.finish(started[i - first], node, node, deadline, o);
      }
    }
    // A node's rerun alone can move the median, and so flag another node
    // that ran beside the others: that one gets its rerun too, until none is
    // newly flagged (at most one rerun per node).
    std::vector<bool> rerun(n, false);
    for (size_t round = 0; round < n; ++round) {
      const NodeStageAnalysis now = analyse_node_stage(summary_.names, results, a_.sweep.threshold);
      bool any = false;
      for (size_t i = 0; i < n; ++i) {
        if (rerun[i] || (!now.slow[i] && !now.failed[i])) continue;
        rerun[i] = any = true;
        const PairResult again = runs_.run({static_cast<int>(i)}, tasks, o);
        std::printf("# %s again, alone: %.2f GB/s (was %.2f%s)\n", summary_.names[i].c_str(),
                    again.busbw, results[i].busbw, results[i].ok ? "" : ", failed");
        if (again.ok && (!results[i].ok || again.busbw > results[i].busbw)) results[i] = again;
      }
      if (!any) break;
    }
    summary_.node_runs = results;
    summary_.node_stage = analyse_node_stage(summary_.names, results, a_.sweep.threshold);
    std::printf("# nodes, busbw of their own out-of-place all-reduce (GB/s); median %.2f:\n",
                summary_.node_stage.reference);
    for (size_t i = 0; i < n; ++i) {
      print_node_row(summary_.names[i], results[i],
                     summary_.node_stage.failed[i] ? "FAILED"
                     : summary_.node_stage.slow[i] ? "SLOW"
                                                   : "ok");
    }
    for (const auto& f : summary_.node_stage.findings) std::printf("%s\n", f.c_str());
  }

  // Stage 2: the ring over every node, judged by the inter-node figure.
  void ring_stage() {
    RunOptions o = a_.sweep.run;
    o.allreduce_args = figure_args(a_, a_.expect);
    summary_.ring_judged = !o.allreduce_args.empty();
    std::printf("# stage 2: the ring over all %zu nodes (%d rank(s) per node)\n",
                summary_.names.size(), a_.sweep.tasks_per_node);
    std::vector<int> everyone;
    for (size_t i = 0; i < summary_.names.size(); ++i) everyone.push_back(static_cast<int>(i));
    summary_.ring = runs_.run(everyone, a_.sweep.tasks_per_node, o);
    summary_.ring_ran = true;
    const PairResult& r = summary_.ring;
    if (!r.ok) {
      std::printf("# ring of all nodes: FAILED: %s\n", r.problem.c_str());
    } else if (summary_.ring_judged) {
      std::printf("# ring of all nodes: %s\n", r.verdict.c_str());
    } else {
      std::printf("# ring of all nodes: busbw %.2f GB/s, correct (no figure to judge it by)\n",
                  r.busbw);
    }
  }

  // Stage 3, when the ring failed, fell below its figure or had none: the
  // pairs name the node or link.
  void sweep_stage_if_needed() {
    const size_t n = summary_.names.size();
    const PairResult& r = summary_.ring;
    const bool ring_doubtful = !r.ok || !r.passed || !summary_.ring_judged;
    std::string why;
    if (a_.sweep_mode == "never") return;
    if (a_.sweep_mode == "always") {
      why = "--sweep always";
    } else if (!ring_doubtful) {
      return;
    } else {
      why = !r.ok       ? "the ring failed"
            : !r.passed ? "the ring is below its figure"
                        : "no figure to judge the ring by: the pairs compare the nodes";
    }
    if (n < 3) {
      std::printf("# stage 3 (sweep) skipped: %s, but with %zu nodes every pair is the ring\n",
                  why.c_str(), n);
      return;
    }
    std::printf("# stage 3: the sweep over every pair of nodes (%s)\n", why.c_str());
    sweep_ = sweep_stage(runs_, a_.sweep, &summary_.ring);
    summary_.sweep = sweep_.analysis;
    summary_.sweep_ran = true;
  }

  const ValidateSummary& summary() const { return summary_; }
  const SweepOutcome& sweep() const { return sweep_; }

 private:
  const ValidateArgs& a_;
  const SlurmRuns& runs_;
  ValidateSummary summary_;
  SweepOutcome sweep_;
};

nlohmann::json run_json(const std::string& node, const PairResult& r) {
  return {{"node", node},         {"busbw", r.busbw}, {"ok", r.ok},
          {"problem", r.problem}, {"pass", r.passed}, {"verdict", r.verdict}};
}

nlohmann::json to_json(const Validation& v, const ValidateVerdict& verdict,
                       const std::vector<double>& stage_seconds) {
  const ValidateSummary& s = v.summary();
  nlohmann::json j;
  j["nodes"] = s.names;
  nlohmann::json nodes = nlohmann::json::array();
  for (size_t i = 0; i < s.names.size() && i < s.node_runs.size(); ++i) {
    auto row = run_json(s.names[i], s.node_runs[i]);
    row["slow"] = static_cast<bool>(s.node_stage.slow[i]);
    row["failed"] = static_cast<bool>(s.node_stage.failed[i]);
    nodes.push_back(row);
  }
  j["node_stage"] = {{"runs", nodes},
                     {"median", s.node_stage.reference},
                     {"findings", s.node_stage.findings},
                     {"pass", s.node_stage.pass},
                     {"seconds", stage_seconds.at(0)}};
  if (s.ring_ran) {
    j["ring"] = run_json(s.names.empty() ? "" : s.names.front(), s.ring);
    j["ring"].erase("node");
    j["ring"]["judged"] = s.ring_judged;
    j["ring"]["seconds"] = stage_seconds.at(1);
  }
  if (s.sweep_ran) {
    j["sweep"] = sweep_json(s.names, v.sweep());
    j["sweep"]["seconds"] = stage_seconds.at(2);
  } else {
    j["sweep"] = nullptr;
  }
  j["pass"] = verdict.pass;
  j["verdict"] = verdict.line;
  return j;
}

// -J -: the JSON alone on stdout, the tables on stderr meanwhile.
class TablesToStderr {
 public:
  explicit TablesToStderr(bool on) {
    if (!on) return;
    std::fflush(stdout);
    saved_ = dup(STDOUT_FILENO);
    if (saved_ >= 0) dup2(STDERR_FILENO, STDOUT_FILENO);
  }
  ~TablesToStderr() { restore(); }
  TablesToStderr(const TablesToStderr&) = delete;
  TablesToStderr& operator=(const TablesToStderr&) = delete;
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stdout);
    dup2(saved_, STDOUT_FILENO);
    close(saved_);
    saved_ = -1;
  }

 private:
  int saved_ = -1;
};

int validate_nodes(const ValidateArgs& a) {
  if (!a.profile.empty()) load_profile(a.profile, a.profile_dirs);  // a bad name fails first
  const bool json_stdout = a.sweep.json_out == "-";
  TablesToStderr tables(json_stdout);
  SlurmRuns runs(a.sweep.nodes, "validate", 1);
  const auto& names = runs.names();
  std::printf("# deepops-bench validate: %zu node(s) (%s), backend %s, %s per all-reduce\n",
              names.size(), join(names, ",").c_str(), a.sweep.run.backend.c_str(),
              a.sweep.run.size.c_str());
  std::fflush(stdout);
  Validation v(a, runs);
  std::vector<double> seconds(3, 0.0);
  auto start = Clock::now();
  v.node_stage();
  seconds[0] = seconds_since(start);
  if (names.size() >= 2) {
    start = Clock::now();
    v.ring_stage();
    seconds[1] = seconds_since(start);
    start = Clock::now();
    v.sweep_stage_if_needed();
    seconds[2] = seconds_since(start);
  }
  const ValidateVerdict verdict = validate_verdict(v.summary());
  std::string took = "# took:";
  auto add_stage = [&](int stage, bool ran) {
    char text[64];
    std::snprintf(text, sizeof(text), "%s stage %d %.1f s", stage > 1 ? "," : "", stage,
                  seconds[static_cast<size_t>(stage - 1)]);
    if (ran) took += text;
  };
  add_stage(1, true);
  add_stage(2, v.summary().ring_ran);
  add_stage(3, v.summary().sweep_ran);
  std::printf("%s\n%s\n", took.c_str(), verdict.line.c_str());
  std::fflush(stdout);
  tables.restore();
  if (json_stdout) {
    std::printf("%s\n", to_json(v, verdict, seconds).dump(2).c_str());
  } else if (!a.sweep.json_out.empty()) {
    write_atomically(a.sweep.json_out, to_json(v, verdict, seconds).dump(2) + "\n");
  }
  if (!a.prometheus_out.empty()) {
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    write_atomically(a.prometheus_out,
                     validate_prometheus_text(v.summary(), verdict, a.sweep.run.backend, now));
  }
  return verdict.pass ? 0 : 1;
}

}  // namespace

int run_validate(const ValidateArgs& a) {
  return run_stopping_on_signals("validate", [&a] { return validate_nodes(a); });
}

}  // namespace deepops::bench
