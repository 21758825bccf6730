#include "sweep_command.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "backend.hpp"
#include "metrics.hpp"

namespace deepops::bench {
namespace {

using Clock = std::chrono::steady_clock;

class Sweep {
 public:
  Sweep(const SlurmRuns& runs, const SweepArgs& a) : runs_(runs), a_(a) {}

  Clock::time_point deadline() const {
    return Clock::now() + std::chrono::seconds(a_.run.timeout_s);
  }

  PairResult ring(const std::vector<int>& nodes) const {
    return runs_.run(nodes, a_.tasks_per_node, a_.run);
  }

  // What looked slow runs again on its own before it is named: a round's
  // runs share the login node, the switch and, in a lab, the cores, and one
  // noisy run must not name a node or a link. The better figure counts.
  void confirm(std::vector<PairResult>& pairs, const SweepAnalysis& first) const {
    const auto& names = runs_.names();
    for (auto& p : pairs) {
      const bool slow_node =
          first.nodes[static_cast<size_t>(p.a)].slow || first.nodes[static_cast<size_t>(p.b)].slow;
      const bool slow_link =
          std::any_of(first.slow_links.begin(), first.slow_links.end(),
                      [&](const LinkVerdict& l) { return l.a == p.a && l.b == p.b; });
      if (!p.ok || !(slow_node || slow_link)) continue;
      const PairResult again = ring({p.a, p.b});
      std::printf("# %s + %s again, alone: %.2f GB/s (was %.2f)\n",
                  names[static_cast<size_t>(p.a)].c_str(), names[static_cast<size_t>(p.b)].c_str(),
                  again.busbw, p.busbw);
      if (again.ok && again.busbw > p.busbw) p = again;
    }
  }

  // Each round's pairs at once, at most --parallel of them at a time.
  std::vector<PairResult> pairs() const {
    std::vector<PairResult> results;
    const size_t most = a_.parallel > 0 ? static_cast<size_t>(a_.parallel) : SIZE_MAX;
    for (const auto& round : pair_rounds(static_cast<int>(runs_.names().size()))) {
      for (size_t first = 0; first < round.size(); first += most) {
        const size_t end = std::min(round.size(), first + most);
        std::vector<Subprocess> started;
        for (size_t k = first; k < end; ++k) {
          started.push_back(runs_.start({round[k].first, round[k].second}, static_cast<int>(k) + 1,
                                        a_.tasks_per_node, a_.run));
        }
        const auto batch_deadline = deadline();
        for (size_t k = first; k < end; ++k) {
          results.push_back(runs_.finish(started[k - first], round[k].first, round[k].second,
                                         batch_deadline, a_.run));
          print_pair(results.back());
        }
      }
    }
    return results;
  }

  void print_pair(const PairResult& p) const {
    const auto& names = runs_.names();
    std::printf("  %-16s %-16s %12.2f   %s\n", names[static_cast<size_t>(p.a)].c_str(),
                names[static_cast<size_t>(p.b)].c_str(), p.busbw,
                p.ok ? "ok" : ("FAILED: " + p.problem).c_str());
    std::fflush(stdout);
  }

 private:
  const SlurmRuns& runs_;
  const SweepArgs& a_;
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

nlohmann::json run_json(const PairResult& r) {
  return {{"busbw", r.busbw}, {"ok", r.ok}, {"problem", r.problem}};
}

int sweep_nodes(const SweepArgs& a) {
  SlurmRuns runs(a.nodes, "sweep", 2);
  const auto& names = runs.names();
  std::printf(
      "# deepops-bench sweep: %zu nodes (%s), backend %s, %s per all-reduce, %d task(s) "
      "per node\n",
      names.size(), join(names, ",").c_str(), a.run.backend.c_str(), a.run.size.c_str(),
      a.tasks_per_node);
  const SweepOutcome s = sweep_stage(runs, a, nullptr);
  if (s.analysis.pass) {
    std::printf(
        "PASS: %zu nodes, %zu pairs, no outlier (every node's best pair within %.0f%% of "
        "%.2f GB/s)\n",
        names.size(), s.pairs.size(), 100 * a.threshold, s.analysis.reference);
  } else {
    std::printf("FAIL: %zu finding(s) above\n", s.analysis.findings.size());
  }
  if (!a.json_out.empty()) write_atomically(a.json_out, sweep_json(names, s).dump(2) + "\n");
  return s.analysis.pass ? 0 : 1;
}

}  // namespace

SweepOutcome sweep_stage(const SlurmRuns& runs, const SweepArgs& a, const PairResult* all) {
  Sweep sweep(runs, a);
  const auto& names = runs.names();
  const int n = static_cast<int>(names.size());
  SweepOutcome s;
  std::vector<int> everyone;
  for (int i = 0; i < n; ++i) everyone.push_back(i);
  if (all) {
    s.all = *all;
  } else {
    s.all = sweep.ring(everyone);
    std::printf("%s\n", ring_line("ring of all nodes", s.all).c_str());
  }
  std::printf("# pairs, busbw of the out-of-place all-reduce (GB/s):\n");
  s.pairs = sweep.pairs();
  s.analysis = analyse_sweep(names, s.pairs, a.threshold, a.expect);
  if (!s.analysis.pass) {
    sweep.confirm(s.pairs, s.analysis);
    s.analysis = analyse_sweep(names, s.pairs, a.threshold, a.expect);
  }
  std::printf("# nodes: best pair and median over its pairs (GB/s); reference %.2f:\n",
              s.analysis.reference);
  for (const auto& v : s.analysis.nodes) {
    std::printf("  %-16s %12.2f %12.2f   %s\n", v.name.c_str(), v.best, v.median,
                v.failed ? "FAILED"
                : v.slow ? "SLOW"
                         : "ok");
  }
  std::vector<int> rest;
  std::vector<std::string> left_out;
  for (int i = 0; i < n; ++i) {
    const auto& v = s.analysis.nodes[static_cast<size_t>(i)];
    if (v.slow || v.failed) {
      left_out.push_back(v.name);
    } else {
      rest.push_back(i);
    }
  }
  if (!left_out.empty() && rest.size() >= 2) {
    s.ran_without = true;
    s.without = join(left_out, ",");
    s.rest = sweep.ring(rest);
    const std::string what = "ring without " + s.without;
    std::printf("%s\n", ring_line(what.c_str(), s.rest).c_str());
  }
  for (const auto& f : s.analysis.findings) std::printf("%s\n", f.c_str());
  std::fflush(stdout);
  return s;
}

nlohmann::json sweep_json(const std::vector<std::string>& names, const SweepOutcome& s) {
  nlohmann::json j;
  j["nodes"] = names;
  j["ring_all"] = run_json(s.all);
  j["pairs"] = nlohmann::json::array();
  for (const auto& p : s.pairs) {
    auto pair = run_json(p);
    pair["a"] = names[static_cast<size_t>(p.a)];
    pair["b"] = names[static_cast<size_t>(p.b)];
    j["pairs"].push_back(pair);
  }
  for (const auto& n : s.analysis.nodes) {
    j["node_verdicts"].push_back({{"node", n.name},
                                  {"best", n.best},
                                  {"median", n.median},
                                  {"slow", n.slow},
                                  {"failed", n.failed}});
  }
  if (s.ran_without) {
    j["ring_without"] = run_json(s.rest);
    j["ring_without"]["left_out"] = s.without;
  }
  j["reference"] = s.analysis.reference;
  j["findings"] = s.analysis.findings;
  j["pass"] = s.analysis.pass;
  return j;
}

int run_sweep(const SweepArgs& a) {
  return run_stopping_on_signals("sweep", [&a] { return sweep_nodes(a); });
}

}  // namespace deepops::bench
