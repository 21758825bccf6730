// deepops-bench's judging parts: profiles and the expected figure, the
// Prometheus text, and the sweep's pairing and outlier naming.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "metrics.hpp"
#include "profile.hpp"
#include "sweep.hpp"

namespace deepops::bench {
namespace {

TEST(Profile, ParsesKeysAndScalesToNodesAndNics) {
  Profile p = parse_profile(
      "# DGX H100\ngpus_per_node 8\nnics_per_node 8\nintra_node_busbw 370  # ring\n"
      "per_nic_busbw 46\naccept 0.9\n",
      "dgx-h100");
  EXPECT_EQ(p.gpus_per_node, 8);
  EXPECT_DOUBLE_EQ(p.per_nic_busbw, 46);
  Expectation one = expected_busbw(p, 1, 8);
  EXPECT_DOUBLE_EQ(one.busbw, 370);
  EXPECT_DOUBLE_EQ(one.minimum, 333);
  Expectation two = expected_busbw(p, 2, 8);  // 8 NICs x 46
  EXPECT_DOUBLE_EQ(two.busbw, 368);
  EXPECT_NE(two.why.find("8 NIC"), std::string::npos) << two.why;
  EXPECT_DOUBLE_EQ(expected_busbw(p, 4, 4).busbw, 4 * 46);  // half the GPUs: half the NICs
  EXPECT_DOUBLE_EQ(expected_busbw(p, 4, 1).busbw, 46);
}

TEST(Profile, ErrorsNameTheLineAndTheChoices) {
  auto message = [](const char* text) {
    try {
      parse_profile(text, "x");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("per_nic_busbw 46\nspeed 9\n").find("x line 2: unknown key 'speed'"),
            std::string::npos);
  EXPECT_NE(message("per_nic_busbw fast\n").find("not a non-negative number"), std::string::npos);
  EXPECT_NE(message("per_nic_busbw 4 6\n").find("want 'key value'"), std::string::npos);
  EXPECT_NE(message("gpus_per_node 8\n").find("neither"), std::string::npos);
  EXPECT_NE(message("per_nic_busbw 1\naccept 2\n").find("fraction"), std::string::npos);
  EXPECT_NE(message("per_nic_busbw 1\ngpus_per_node 1.5\n").find("whole"), std::string::npos);
}

TEST(Profile, LoadsByNameFromTheFirstFolderOrByPath) {
  char tmpl[] = "/tmp/profiles.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::ofstream(dir + "/site.conf") << "per_nic_busbw 12\n";
  EXPECT_DOUBLE_EQ(load_profile("site", {"/nonexistent", dir}).per_nic_busbw, 12);
  EXPECT_DOUBLE_EQ(load_profile(dir + "/site.conf", {}).per_nic_busbw, 12);
  try {
    load_profile("dgx-z", {dir});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("profiles there: site"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Metrics, PrometheusTextHasEverySizeAndTheVerdict) {
  std::vector<SizeResult> results = {{1 << 20, 1 << 18, DataType::f32, RedOp::sum, 100, 90, 0, 0},
                                     {1 << 30, 1 << 28, DataType::f32, RedOp::sum, 1e5, 9e4, 0, 2}};
  RunSummary s{"cpu", 4, 2, &results, {10, 9, "x"}, {false, "FAIL"}, 1.8e9};
  const std::string text = prometheus_text(s);
  EXPECT_NE(text.find("# TYPE deepops_bench_allreduce_busbw_gbps gauge"), std::string::npos);
  EXPECT_NE(text.find("deepops_bench_allreduce_busbw_gbps{backend=\"cpu\",ranks=\"4\",nodes=\"2\","
                      "size=\"1073741824\",type=\"float\",op=\"sum\"} 16.10612736"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("deepops_bench_allreduce_wrong_elements{backend=\"cpu\",ranks=\"4\",nodes="
                      "\"2\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("deepops_bench_allreduce_pass{backend=\"cpu\",ranks=\"4\",nodes=\"2\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("deepops_bench_allreduce_finished_seconds{backend=\"cpu\",ranks=\"4\","
                      "nodes=\"2\"} 1800000000"),
            std::string::npos)
      << text;
  const std::string path = "/tmp/metrics-test-" + std::to_string(getpid()) + ".prom";
  write_atomically(path, text);
  std::ifstream in(path);
  std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, text);
  std::filesystem::remove(path);
  EXPECT_THROW(write_atomically("/nonexistent/dir/x.prom", text), std::runtime_error);
}

TEST(Sweep, RoundsCoverEveryPairOnceWithNoNodeTwiceInARound) {
  for (int n = 2; n <= 9; ++n) {
    std::set<std::pair<int, int>> seen;
    auto rounds = pair_rounds(n);
    EXPECT_EQ(rounds.size(), static_cast<size_t>(n % 2 ? n : n - 1)) << n;
    for (const auto& round : rounds) {
      std::set<int> busy;
      for (auto [a, b] : round) {
        EXPECT_LT(a, b);
        EXPECT_TRUE(busy.insert(a).second && busy.insert(b).second) << n;
        EXPECT_TRUE(seen.insert({a, b}).second) << n;
      }
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(n * (n - 1) / 2)) << n;
  }
  EXPECT_TRUE(pair_rounds(1).empty());
}

std::vector<PairResult> all_pairs(int n, double fast, int slow_node, double slow) {
  std::vector<PairResult> pairs;
  for (int a = 0; a < n; ++a) {
    for (int b = a + 1; b < n; ++b) {
      pairs.push_back({a, b, (a == slow_node || b == slow_node) ? slow : fast, true, "", true, ""});
    }
  }
  return pairs;
}

TEST(Sweep, NamesTheSlowNodeAndOnlyIt) {
  const std::vector<std::string> names = {"n1", "n2", "n3", "n4"};
  SweepAnalysis s = analyse_sweep(names, all_pairs(4, 1.0, 2, 0.02), 0.8, 0);
  EXPECT_FALSE(s.pass);
  ASSERT_EQ(s.findings.size(), 1u);
  EXPECT_EQ(s.findings[0].rfind("SLOW NODE: n3: its best pair reaches 0.02 GB/s", 0), 0u)
      << s.findings[0];
  EXPECT_TRUE(s.nodes[2].slow);
  EXPECT_TRUE(s.slow_links.empty());  // n3's pairs are its own fault, not links
  EXPECT_DOUBLE_EQ(s.reference, 1.0);
  // Three nodes, one slow: still named.
  SweepAnalysis three = analyse_sweep({"a", "b", "c"}, all_pairs(3, 1.0, 0, 0.1), 0.8, 0);
  ASSERT_EQ(three.findings.size(), 1u);
  EXPECT_NE(three.findings[0].find("SLOW NODE: a"), std::string::npos);
}

TEST(Sweep, AllEvenPassesAndExpectFlagsEveryone) {
  const std::vector<std::string> names = {"n1", "n2", "n3", "n4"};
  auto pairs = all_pairs(4, 1.0, -1, 0);
  pairs[1].busbw = 0.85;  // noise within the threshold
  EXPECT_TRUE(analyse_sweep(names, pairs, 0.8, 0).pass);
  SweepAnalysis expected = analyse_sweep(names, pairs, 0.8, 5.0);
  EXPECT_EQ(expected.findings.size(), 4u);
}

TEST(Sweep, NamesASlowLinkBetweenFastNodes) {
  const std::vector<std::string> names = {"n1", "n2", "n3", "n4"};
  auto pairs = all_pairs(4, 1.0, -1, 0);
  for (auto& p : pairs) {
    if (p.a == 1 && p.b == 3) p.busbw = 0.3;
  }
  SweepAnalysis s = analyse_sweep(names, pairs, 0.8, 0);
  ASSERT_EQ(s.slow_links.size(), 1u);
  EXPECT_EQ(s.findings.size(), 1u);
  EXPECT_NE(s.findings[0].find("SLOW LINK: n2 <-> n4: 0.30 GB/s"), std::string::npos)
      << s.findings[0];
}

TEST(Sweep, FailedRunsNameTheirPairAndADeadNode) {
  const std::vector<std::string> names = {"n1", "n2", "n3"};
  auto pairs = all_pairs(3, 1.0, -1, 0);
  for (auto& p : pairs) {
    if (p.a == 2 || p.b == 2) {
      p.ok = false;
      p.problem = "exit 1: srun: error: n3: Communication connection failure";
    }
  }
  SweepAnalysis s = analyse_sweep(names, pairs, 0.8, 0);
  EXPECT_FALSE(s.pass);
  EXPECT_TRUE(s.nodes[2].failed);
  bool node = false, pair = false;
  for (const auto& f : s.findings) {
    node |= f.rfind("FAILED NODE: n3", 0) == 0;
    pair |= f.find("FAILED PAIR: n1 + n3: exit 1: srun") != std::string::npos;
  }
  EXPECT_TRUE(node && pair);
}

TEST(Sweep, RankZerosJsonAmongOtherRanksAndNcclLogLines) {
  const std::string out =
      "1: node2:123:123 [0] NCCL INFO Bootstrap : Using eth0\n"
      "0: node1:77:77 [0] NCCL INFO cudaDriverVersion 12040\n"
      "0: {\n"
      "1: node2:123:130 [0] NCCL INFO comm 0x55 rank 1 nranks 2 - Destroy COMPLETE\n"
      "0:   \"pass\": true\n"
      "0: }\n"
      "0: node1:77:90 [0] NCCL INFO comm 0x66 rank 0 nranks 2 - Destroy COMPLETE\n";
  auto json = rank0_json(out);
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ(*json, "{\n  \"pass\": true\n}\n");
  EXPECT_FALSE(rank0_json("0: no json here\n1: {\n1: }\n").has_value());
  EXPECT_FALSE(rank0_json("0: {\n0:   \"cut\": 1\n").has_value());  // never closed
  EXPECT_EQ(*rank0_json(" 0: {\n 0: }\n"), "{\n}\n");               // srun pads the label
}

TEST(Sweep, NodeAddressFromScontrol) {
  const std::string out =
      "NodeName=n1 Arch=x86_64 CoresPerSocket=1 NodeAddr=10.250.77.11 NodeHostName=n1\n"
      "NodeName=n2 NodeAddr=10.250.77.12 NodeHostName=n2\n";
  EXPECT_EQ(node_address(out, "n2"), "10.250.77.12");
  EXPECT_EQ(node_address(out, "n3"), "");
  EXPECT_EQ(node_address("", "n1"), "");
}

}  // namespace
}  // namespace deepops::bench
