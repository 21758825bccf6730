#include "validate.hpp"

#include <algorithm>
#include <cstdio>

#include "metrics.hpp"

namespace deepops::bench {
namespace {

void add_once(std::vector<std::string>& list, const std::string& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

}  // namespace

NodeStageAnalysis analyse_node_stage(const std::vector<std::string>& names,
                                     const std::vector<PairResult>& runs, double threshold) {
  NodeStageAnalysis s;
  s.slow.assign(names.size(), false);
  s.failed.assign(names.size(), false);
  std::vector<double> measured;
  for (const auto& r : runs) {
    if (r.ok && r.busbw > 0) measured.push_back(r.busbw);
  }
  s.reference = median(measured);
  const bool relative = measured.size() >= 2;
  for (size_t i = 0; i < runs.size() && i < names.size(); ++i) {
    const PairResult& r = runs[i];
    if (!r.ok) {
      s.failed[i] = true;
      s.findings.push_back("FAILED NODE: " + names[i] + ": its own all-reduce: " + r.problem);
    } else if (!r.passed) {
      s.slow[i] = true;
      s.findings.push_back("SLOW NODE: " + names[i] + ": its own all-reduce: " + r.verdict);
    } else if (relative && r.busbw < threshold * s.reference) {
      s.slow[i] = true;
      char pct[32];
      std::snprintf(pct, sizeof(pct), "%.0f%%", 100.0 * r.busbw / s.reference);
      s.findings.push_back("SLOW NODE: " + names[i] + ": its own all-reduce reaches " +
                           gbps_text(r.busbw) + ", " + pct + " of the nodes' median (" +
                           gbps_text(s.reference) + ")");
    }
  }
  s.pass = s.findings.empty();
  return s;
}

ValidateVerdict validate_verdict(const ValidateSummary& s) {
  std::vector<std::string> named;
  const NodeStageAnalysis& node = s.node_stage;
  for (size_t i = 0; i < s.names.size() && i < node.slow.size(); ++i) {
    if (node.failed[i]) add_once(named, s.names[i] + " (its own all-reduce failed)");
    if (node.slow[i]) add_once(named, s.names[i] + " (its own all-reduce is slow)");
  }
  if (s.sweep_ran) {
    for (size_t i = 0; i < s.sweep.nodes.size(); ++i) {
      // A node already named by its own all-reduce is slow with its peers
      // for that reason: naming it again would blame its link.
      const bool named_alone = i < node.slow.size() && (node.slow[i] || node.failed[i]);
      const auto& v = s.sweep.nodes[i];
      if (named_alone) continue;
      if (v.failed) add_once(named, v.name + " (no pair with it ran)");
      if (v.slow) add_once(named, v.name + " (slow with every peer: its network)");
    }
    for (const auto& l : s.sweep.slow_links) {
      add_once(named, "the link " + s.names[static_cast<size_t>(l.a)] + " <-> " +
                          s.names[static_cast<size_t>(l.b)]);
    }
  }
  const bool ring_bad = s.ring_ran && (!s.ring.ok || !s.ring.passed);
  if (ring_bad && named.empty()) {
    named.push_back(std::string("the ring of all nodes (") +
                    (s.ring.ok ? "below its figure" : "it failed") +
                    (s.sweep_ran ? "; the sweep names no node or link)" : ")"));
  } else if (s.sweep_ran && !s.sweep.pass && named.empty()) {
    named.push_back("the sweep's failed runs (above)");
  }
  ValidateVerdict v;
  v.pass = named.empty();
  std::string line;
  if (!v.pass) {
    line = "FAIL: ";
    for (size_t i = 0; i < named.size(); ++i) line += (i ? ", " : "") + named[i];
    v.line = line;
    return v;
  }
  char text[160];
  std::snprintf(text, sizeof(text), "PASS: %zu node(s): every node's own all-reduce correct",
                s.names.size());
  line = text;
  if (node.reference > 0 && s.names.size() >= 2) {
    std::snprintf(text, sizeof(text), " and within %.0f%% of the nodes' median (%s)",
                  100 * s.threshold, gbps_text(node.reference).c_str());
    line += text;
  } else if (s.names.size() < 2) {
    line += " (one node: no other to compare it with)";
  } else {
    line += " (one rank per node: no bandwidth to compare)";
  }
  if (s.ring_ran) {
    line += "; the ring of all nodes " +
            (s.ring_judged ? s.ring.verdict.substr(s.ring.verdict.find(':') + 2)
                           : "correct at " + gbps_text(s.ring.busbw) +
                                 " (no figure to judge it: --profile or --expect)");
  }
  if (s.sweep_ran) line += "; the sweep names no slow node or link";
  v.line = line;
  return v;
}

std::string validate_prometheus_text(const ValidateSummary& s, const ValidateVerdict& v,
                                     const std::string& backend, double finished_unix) {
  const std::string run =
      "backend=\"" + backend + "\",nodes=\"" + std::to_string(s.names.size()) + "\"";
  std::string out;
  auto metric = [&](const std::string& name, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  auto node_label = [&](size_t i) { return run + ",node=\"" + s.names[i] + "\""; };
  const size_t n = std::min(s.names.size(), s.node_runs.size());
  metric("deepops_bench_validate_node_busbw_gbps",
         "Out-of-place bus bandwidth of each node's own all-reduce, GB/s.");
  for (size_t i = 0; i < n; ++i) {
    out += "deepops_bench_validate_node_busbw_gbps{" + node_label(i) + "} " +
           prometheus_number(s.node_runs[i].busbw) + "\n";
  }
  metric("deepops_bench_validate_node_ok",
         "1 when the node's own all-reduce was correct and not slow, else 0.");
  for (size_t i = 0; i < n; ++i) {
    const bool ok =
        i < s.node_stage.slow.size() && !s.node_stage.slow[i] && !s.node_stage.failed[i];
    out += "deepops_bench_validate_node_ok{" + node_label(i) + "} " + (ok ? "1" : "0") + "\n";
  }
  if (s.ring_ran) {
    metric("deepops_bench_validate_ring_busbw_gbps",
           "Out-of-place bus bandwidth of the all-reduce over all nodes, GB/s.");
    out += "deepops_bench_validate_ring_busbw_gbps{" + run + "} " +
           prometheus_number(s.ring.busbw) + "\n";
  }
  if (s.sweep_ran) {
    metric("deepops_bench_validate_sweep_best_busbw_gbps",
           "Each node's best pair in the sweep, GB/s.");
    for (size_t i = 0; i < s.sweep.nodes.size() && i < s.names.size(); ++i) {
      out += "deepops_bench_validate_sweep_best_busbw_gbps{" + node_label(i) + "} " +
             prometheus_number(s.sweep.nodes[i].best) + "\n";
    }
  }
  metric("deepops_bench_validate_pass", "1 when the validation passed, 0 when it failed.");
  out += "deepops_bench_validate_pass{" + run + "} " + (v.pass ? "1" : "0") + "\n";
  metric("deepops_bench_validate_finished_seconds",
         "When the validation ended, seconds since the epoch.");
  out += "deepops_bench_validate_finished_seconds{" + run + "} " +
         prometheus_number(finished_unix) + "\n";
  return out;
}

}  // namespace deepops::bench
