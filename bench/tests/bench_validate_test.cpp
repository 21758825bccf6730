// deepops-bench validate's judging: each node's own all-reduce against the
// others and its figure, the verdict line naming nodes and links stage by
// stage, and its Prometheus text.
#include <gtest/gtest.h>

#include "validate.hpp"

namespace deepops::bench {
namespace {

const std::vector<std::string> kNames = {"n1", "n2", "n3", "n4"};

PairResult node_run(int node, double busbw) {
  return {node, node, busbw, true, "", true, "PASS: every result correct"};
}

std::vector<PairResult> node_runs(const std::vector<double>& busbw) {
  std::vector<PairResult> runs;
  for (size_t i = 0; i < busbw.size(); ++i) runs.push_back(node_run(static_cast<int>(i), busbw[i]));
  return runs;
}

TEST(ValidateNodes, EvenNodesPassAndTheSlowOneIsNamedAgainstTheMedian) {
  EXPECT_TRUE(analyse_node_stage(kNames, node_runs({1.0, 0.9, 1.1, 1.0}), 0.5).pass);
  NodeStageAnalysis s = analyse_node_stage(kNames, node_runs({1.0, 0.1, 1.1, 1.0}), 0.5);
  EXPECT_FALSE(s.pass);
  EXPECT_DOUBLE_EQ(s.reference, 1.0);
  EXPECT_TRUE(s.slow[1]);
  EXPECT_FALSE(s.slow[0] || s.slow[2] || s.slow[3]);
  ASSERT_EQ(s.findings.size(), 1u);
  EXPECT_EQ(s.findings[0],
            "SLOW NODE: n2: its own all-reduce reaches 0.10 GB/s, 10% of the nodes' median "
            "(1.00 GB/s)");
}

TEST(ValidateNodes, AFailedRunOrTheRunsOwnFailedFigureNamesItsNode) {
  auto runs = node_runs({1.0, 1.0, 1.0, 1.0});
  runs[2].ok = false;
  runs[2].problem = "exit 1: srun: error: n3: task 0: Killed";
  runs[3].passed = false;
  runs[3].verdict = "FAIL: busbw 1.00 GB/s at 1048576 bytes is below the expected 300.00 GB/s";
  NodeStageAnalysis s = analyse_node_stage(kNames, runs, 0.5);
  EXPECT_TRUE(s.failed[2]);
  EXPECT_TRUE(s.slow[3]);
  ASSERT_EQ(s.findings.size(), 2u);
  EXPECT_EQ(s.findings[0],
            "FAILED NODE: n3: its own all-reduce: exit 1: srun: error: n3: task 0: "
            "Killed");
  EXPECT_EQ(s.findings[1].rfind("SLOW NODE: n4: its own all-reduce: FAIL: busbw 1.00", 0), 0u);
}

TEST(ValidateNodes, OneRankPerNodeMeasuresNoBandwidthSoNoneIsSlow) {
  NodeStageAnalysis s = analyse_node_stage(kNames, node_runs({0, 0, 0, 0}), 0.8);
  EXPECT_TRUE(s.pass);
  EXPECT_DOUBLE_EQ(s.reference, 0);
  // One node alone has nothing to be compared with.
  EXPECT_TRUE(analyse_node_stage({"n1"}, node_runs({0.001}), 0.8).pass);
}

ValidateSummary passing_summary() {
  ValidateSummary s;
  s.names = kNames;
  s.threshold = 0.5;
  s.node_runs = node_runs({1.0, 1.0, 1.0, 1.0});
  s.node_stage = analyse_node_stage(kNames, s.node_runs, 0.5);
  s.ring_ran = true;
  s.ring = {0, 3, 0.5, true, "", true, "PASS: every result correct; busbw 0.50 GB/s"};
  return s;
}

TEST(ValidateVerdictLine, PassSaysWhatWasJudgedAndHow) {
  ValidateSummary s = passing_summary();
  ValidateVerdict v = validate_verdict(s);
  EXPECT_TRUE(v.pass);
  EXPECT_EQ(v.line,
            "PASS: 4 node(s): every node's own all-reduce correct and within 50% of the nodes' "
            "median (1.00 GB/s); the ring of all nodes correct at 0.50 GB/s (no figure to judge "
            "it: --profile or --expect)");
  s.ring_judged = true;
  s.ring.verdict = "PASS: busbw 368.00 GB/s at 1073741824 bytes reaches 331.20 GB/s";
  s.sweep_ran = true;
  s.sweep.pass = true;
  v = validate_verdict(s);
  EXPECT_NE(v.line.find("; the ring of all nodes busbw 368.00 GB/s at 1073741824 bytes reaches "
                        "331.20 GB/s; the sweep names no slow node or link"),
            std::string::npos)
      << v.line;
}

TEST(ValidateVerdictLine, OneNodeOrOneRankSaysThereWasNothingToCompare) {
  ValidateSummary one;
  one.names = {"n1"};
  one.node_runs = node_runs({2.5});
  one.node_stage = analyse_node_stage(one.names, one.node_runs, 0.8);
  EXPECT_EQ(validate_verdict(one).line,
            "PASS: 1 node(s): every node's own all-reduce correct (one node: no other to compare "
            "it with)");
  ValidateSummary ranks = passing_summary();
  ranks.node_runs = node_runs({0, 0, 0, 0});
  ranks.node_stage = analyse_node_stage(kNames, ranks.node_runs, 0.5);
  EXPECT_NE(validate_verdict(ranks).line.find("(one rank per node: no bandwidth to compare)"),
            std::string::npos);
}

TEST(ValidateVerdictLine, FailNamesEachNodeAndLinkWithItsStage) {
  ValidateSummary s = passing_summary();
  s.node_runs[1].busbw = 0.1;
  s.node_stage = analyse_node_stage(kNames, s.node_runs, 0.5);
  s.sweep_ran = true;
  s.sweep.nodes.resize(4);
  for (size_t i = 0; i < 4; ++i) s.sweep.nodes[i].name = kNames[i];
  s.sweep.nodes[2].slow = true;
  s.sweep.slow_links.push_back({0, 3, 0.1, 1.0});
  s.sweep.pass = false;
  ValidateVerdict v = validate_verdict(s);
  EXPECT_FALSE(v.pass);
  EXPECT_EQ(v.line,
            "FAIL: n2 (its own all-reduce is slow), n3 (slow with every peer: its network), the "
            "link n1 <-> n4");
}

TEST(ValidateVerdictLine, ARingBelowItsFigureFailsEvenWhenNoNodeIsNamed) {
  ValidateSummary s = passing_summary();
  s.ring_judged = true;
  s.ring.passed = false;
  EXPECT_EQ(validate_verdict(s).line, "FAIL: the ring of all nodes (below its figure)");
  s.sweep_ran = true;
  s.sweep.pass = true;
  EXPECT_EQ(validate_verdict(s).line,
            "FAIL: the ring of all nodes (below its figure; the sweep names no node or link)");
  s.ring.ok = false;
  EXPECT_FALSE(validate_verdict(s).pass);
}

TEST(ValidatePrometheus, PerNodeFiguresTheRingAndTheVerdict) {
  ValidateSummary s = passing_summary();
  s.node_runs[1].busbw = 0.1;
  s.node_stage = analyse_node_stage(kNames, s.node_runs, 0.5);
  const ValidateVerdict v = validate_verdict(s);
  const std::string text = validate_prometheus_text(s, v, "cpu", 1700000000);
  const std::string run = "backend=\"cpu\",nodes=\"4\"";
  EXPECT_NE(text.find("deepops_bench_validate_node_busbw_gbps{" + run + ",node=\"n2\"} 0.1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("deepops_bench_validate_node_ok{" + run + ",node=\"n2\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("deepops_bench_validate_node_ok{" + run + ",node=\"n1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("deepops_bench_validate_ring_busbw_gbps{" + run + "} 0.5\n"),
            std::string::npos);
  EXPECT_NE(text.find("deepops_bench_validate_pass{" + run + "} 0\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE deepops_bench_validate_finished_seconds gauge\n"), std::string::npos);
}

}  // namespace
}  // namespace deepops::bench
