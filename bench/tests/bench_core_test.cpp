// deepops-bench's core: element types, reductions, result checks, the
// nccl-tests table and the verdict.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "datatype.hpp"
#include "launch.hpp"
#include "rendezvous.hpp"
#include "report.hpp"
#include "sizes.hpp"

namespace deepops::bench {
namespace {

const DataType kTypes[] = {DataType::f32, DataType::f16, DataType::bf16, DataType::i32};
const RedOp kOps[] = {RedOp::sum, RedOp::prod, RedOp::min, RedOp::max};

TEST(DataTypes, NamesRoundTripAndAliases) {
  for (DataType t : kTypes) EXPECT_EQ(parse_type(type_name(t)), t);
  for (RedOp op : kOps) EXPECT_EQ(parse_op(op_name(op)), op);
  EXPECT_EQ(parse_type("bf16"), DataType::bf16);
  EXPECT_EQ(parse_type("fp16"), DataType::f16);
  EXPECT_EQ(parse_type("int"), DataType::i32);
  EXPECT_THROW(parse_type("double"), std::invalid_argument);
  EXPECT_THROW(parse_op("avg"), std::invalid_argument);
  EXPECT_EQ(type_size(DataType::f16), 2u);
  EXPECT_EQ(type_size(DataType::i32), 4u);
}

TEST(DataTypes, SixteenBitConversions) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);               // the largest half
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);               // rounds to infinity
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), 0x3c00);     // halfway: to even
  EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048), 0x3c02);     // halfway: to even, upwards
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0x7c00), INFINITY);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite half survives the round trip
    ASSERT_EQ(float_to_half(half_to_float(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(float_to_bf16(1.0f + 1.0f / 256), 0x3f80);  // halfway: to even
  EXPECT_EQ(float_to_bf16(1.0f + 3.0f / 256), 0x3f82);  // halfway: to even, upwards
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST(Reduction, EveryTypeAndOpGivesTheExpectedValues) {
  constexpr size_t kCount = 1000;
  for (DataType t : kTypes) {
    for (RedOp op : kOps) {
      for (int nranks : {1, 2, 3, 8, 64}) {
        std::vector<char> acc(kCount * type_size(t)), in(kCount * type_size(t));
        fill_input(acc.data(), kCount, t, op, 0);
        for (int r = 1; r < nranks; ++r) {
          fill_input(in.data(), kCount, t, op, r);
          reduce_into(acc.data(), in.data(), kCount, t, op);
        }
        EXPECT_EQ(count_wrong(acc.data(), kCount, t, op, nranks), 0u)
            << type_name(t) << " " << op_name(op) << " on " << nranks << " ranks";
      }
    }
  }
}

TEST(Reduction, ACorruptedElementIsCountedAndAWrongRankCountIsSeen) {
  constexpr size_t kCount = 256;
  std::vector<float> acc(kCount), in(kCount);
  fill_input(acc.data(), kCount, DataType::f32, RedOp::sum, 0);
  fill_input(in.data(), kCount, DataType::f32, RedOp::sum, 1);
  reduce_into(acc.data(), in.data(), kCount, DataType::f32, RedOp::sum);
  ASSERT_EQ(count_wrong(acc.data(), kCount, DataType::f32, RedOp::sum, 2), 0u);
  acc[17] += 1;
  acc[200] = -acc[200] + 0.5f;
  EXPECT_EQ(count_wrong(acc.data(), kCount, DataType::f32, RedOp::sum, 2), 2u);
  // A rank that never took part shows too (the sums differ by its input).
  fill_input(acc.data(), kCount, DataType::f32, RedOp::sum, 0);
  EXPECT_GT(count_wrong(acc.data(), kCount, DataType::f32, RedOp::sum, 2), kCount / 2);
}

TEST(Reduction, ChecksAnOffsetSlice) {
  constexpr size_t kCount = 100;
  std::vector<int32_t> whole(kCount);
  fill_input(whole.data(), kCount, DataType::i32, RedOp::max, 0);
  EXPECT_EQ(count_wrong(whole.data() + 40, 60, DataType::i32, RedOp::max, 1, 40), 0u);
  EXPECT_GT(count_wrong(whole.data() + 40, 60, DataType::i32, RedOp::max, 1, 0), 0u);
}

TEST(Sizes, ParseAndSteps) {
  EXPECT_EQ(parse_size("8"), 8u);
  EXPECT_EQ(parse_size("64K"), 64u << 10);
  EXPECT_EQ(parse_size("64M"), 64u << 20);
  EXPECT_EQ(parse_size("1g"), size_t{1} << 30);
  EXPECT_THROW(parse_size("12X4"), std::invalid_argument);
  EXPECT_THROW(parse_size("M"), std::invalid_argument);
  EXPECT_THROW(parse_size(""), std::invalid_argument);
  EXPECT_EQ(message_sizes(8, 64, 2, 0, 4), (std::vector<size_t>{8, 16, 32, 64}));
  EXPECT_EQ(message_sizes(8, 20, 1, 4, 4), (std::vector<size_t>{8, 12, 16, 20}));
  EXPECT_EQ(message_sizes(1, 4, 2, 0, 4), (std::vector<size_t>{4}));  // whole elements
  EXPECT_EQ(message_sizes(8, parse_size("64M"), 2, 0, 4).size(), 24u);
  EXPECT_THROW(message_sizes(64, 8, 2, 0, 4), std::invalid_argument);
  EXPECT_THROW(message_sizes(8, 64, 1, 0, 4), std::invalid_argument);
}

TEST(Report, BandwidthFormulas) {
  EXPECT_DOUBLE_EQ(algbw_gbps(1'000'000'000, 1e6), 1.0);  // 1 GB in 1 s
  EXPECT_DOUBLE_EQ(allreduce_busbw(10.0, 2), 10.0);       // 2(n-1)/n = 1
  EXPECT_DOUBLE_EQ(allreduce_busbw(10.0, 4), 15.0);       // 1.5
  EXPECT_DOUBLE_EQ(allreduce_busbw(10.0, 1), 0.0);
}

SizeResult result(size_t bytes, double us, size_t wrong = 0) {
  SizeResult r;
  r.bytes = bytes;
  r.count = bytes / 4;
  r.out_of_place_us = us;
  r.in_place_us = us;
  r.out_of_place_wrong = wrong;
  return r;
}

TEST(Report, TableInNcclTestsColumns) {
  std::string row = table_row(result(1 << 20, 100.0), 4);
  // size, count, type, redop, root, then time/algbw/busbw/#wrong twice.
  EXPECT_NE(row.find("     1048576        262144     float     sum      -1"), std::string::npos)
      << row;
  EXPECT_NE(row.find("100.00   10.49   15.73      0"), std::string::npos) << row;
  EXPECT_NE(table_header().find("out-of-place"), std::string::npos);
  EXPECT_NE(table_footer({result(8, 1.0)}, 2).find("# Out of bounds values : 0 OK"),
            std::string::npos);
  EXPECT_NE(table_footer({result(8, 1.0, 3)}, 2).find("# Out of bounds values : 3 FAILED"),
            std::string::npos);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string field; in >> field;) fields.push_back(field);
  return fields;
}

// Where each run of non-blanks ends: a column's right edge.
std::vector<size_t> right_edges(const std::string& line) {
  std::vector<size_t> edges;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != ' ' && (i + 1 == line.size() || line[i + 1] == ' ')) edges.push_back(i + 1);
  }
  return edges;
}

TEST(Table, FixedWidthCellsAtAnyMagnitude) {
  EXPECT_EQ(fixed_width(0, 7), "   0.00");
  EXPECT_EQ(fixed_width(-0.0, 6), "  0.00");
  EXPECT_EQ(fixed_width(0.01, 7), "   0.01");
  EXPECT_EQ(fixed_width(9999.99, 7), "9999.99");
  EXPECT_EQ(fixed_width(9999.999, 7), "10000.0");  // rounding up loses a decimal too
  EXPECT_EQ(fixed_width(10000, 7), "10000.0");
  EXPECT_EQ(fixed_width(1234567, 7), "1234567");
  EXPECT_EQ(fixed_width(123456789, 7), "1.235e8");
  EXPECT_EQ(fixed_width(5122814.01, 7), "5122814");
  EXPECT_EQ(fixed_width(5122814.01, 6), "5.12e6");
  EXPECT_EQ(fixed_width(-5122814.01, 6), "-5.1e6");
  EXPECT_EQ(fixed_width(1e300, 7), "1.0e300");
  EXPECT_EQ(fixed_width(1e300, 6), " 1e300");
  EXPECT_EQ(fixed_width(-1e300, 6), "-1e300");
  EXPECT_EQ(fixed_width(NAN, 6), "   nan");
  EXPECT_EQ(fixed_width(INFINITY, 7), "    inf");
  EXPECT_EQ(fixed_width(-INFINITY, 6), "  -inf");
  EXPECT_EQ(fixed_width(1e300, 3), "***");  // nothing fits: never wider
  EXPECT_EQ(fixed_width(12.345, 7, 0), "     12");
  EXPECT_EQ(fixed_width_count(999'999'999'999, 12), "999999999999");
  EXPECT_EQ(fixed_width_count(1'099'511'627'776, 12), "1.0995116e12");  // 1 TiB
  EXPECT_EQ(fixed_width_count(99999, 5), "99999");
  EXPECT_EQ(fixed_width_count(123456, 5), "1.2e5");
  EXPECT_EQ(fixed_width_count(SIZE_MAX, 5), " 2e19");
  const double values[] = {0,      0.01,  9999.99, 10000,  123456789,  5122814.01, 1e300,
                           1e-300, -0.01, -1,      -10000, -123456789, -1e300};
  for (int width : {4, 5, 6, 7, 12}) {
    for (double v : values) {
      const std::string cell = fixed_width(v, width);
      ASSERT_EQ(cell.size(), static_cast<size_t>(width)) << v << " in " << width << ": " << cell;
      if (width < 6) continue;  // "-1e300" needs 6
      // Still a number, to awk and strtod, close to the value.
      char* end = nullptr;
      const double back = std::strtod(cell.c_str(), &end);
      EXPECT_EQ(*end, '\0') << cell;
      EXPECT_NEAR(back, v, std::max(std::fabs(v) * 0.5, 0.005)) << cell;
    }
    for (double v : {static_cast<double>(NAN), static_cast<double>(INFINITY),
                     -static_cast<double>(INFINITY), DBL_MAX, -DBL_MAX}) {
      EXPECT_EQ(fixed_width(v, width).size(), static_cast<size_t>(width)) << v;
    }
    for (size_t v : {size_t{0}, size_t{99999}, size_t{100000}, size_t{1} << 40, SIZE_MAX}) {
      EXPECT_EQ(fixed_width_count(v, width).size(), static_cast<size_t>(width)) << v;
    }
  }
}

TEST(Table, RowsLineUpWithTheHeaderAtAnyMagnitude) {
  const auto header = lines_of(table_header());
  ASSERT_EQ(header.size(), 3u);
  // "#", then the 13 labels, each ending where its column ends.
  auto label_edges = right_edges(header[1]);
  ASSERT_EQ(label_edges.size(), 14u) << header[1];
  label_edges.erase(label_edges.begin());
  const double magnitudes[] = {0,     0.01, 9999.99, 10000, 123456789, 5122814.01,
                               1e300, -1,   -1e300,  NAN,   INFINITY,  -INFINITY};
  std::vector<SizeResult> rows;
  for (double v : magnitudes) {
    rows.push_back(result(64 << 20, v));                                    // the times
    SizeResult bw = result(1000, std::isfinite(v) && v > 0 ? 1.0 / v : 0);  // algbw = v
    bw.in_place_us = 0.01;
    rows.push_back(bw);
  }
  for (size_t bytes : {size_t{999'999'999'999}, size_t{1'000'000'000'000}, SIZE_MAX}) {
    SizeResult big = result(bytes, 1e9, 123456);
    big.in_place_wrong = SIZE_MAX;
    rows.push_back(big);
  }
  for (int nranks : {1, 2, 8}) {
    for (const auto& r : rows) {
      const std::string text = table_row(r, nranks);
      ASSERT_EQ(text.back(), '\n');
      const std::string row = text.substr(0, text.size() - 1);
      for (const auto& line : header) EXPECT_EQ(row.size(), line.size()) << row;
      // 13 fields, as bench/table_lib.sh reads them (NF == 13), under their labels.
      EXPECT_EQ(fields_of(row).size(), 13u) << row;
      EXPECT_EQ(right_edges(row), label_edges) << "\n" << header[1] << "\n" << row;
    }
  }
}

TEST(Table, OneRankInPlaceBandwidthIsNotApplicable) {
  // 64 MiB: out of place a local copy in 10 ms; in place nothing at all, in
  // 0.01 us (6710886.40 GB/s, an absurd quotient).
  SizeResult r = result(64 << 20, 10000.0);
  r.in_place_us = 0.01;
  const auto alone = fields_of(table_row(r, 1));
  ASSERT_EQ(alone.size(), 13u);
  EXPECT_EQ(alone[5], "10000.0");  // time
  EXPECT_EQ(alone[6], "6.71");     // algbw: the copy
  EXPECT_EQ(alone[7], "0.00");     // busbw: 0 by definition
  EXPECT_EQ(alone[9], "0.01");
  EXPECT_EQ(alone[10], "n/a");
  EXPECT_EQ(alone[11], "n/a");
  EXPECT_EQ(alone[12], "0");  // correctness is still checked
  const auto two = fields_of(table_row(r, 2));
  ASSERT_EQ(two.size(), 13u);
  EXPECT_EQ(two[7], "6.71");
  EXPECT_EQ(two[10], "6.71e6");  // measured: two ranks do move the data
  EXPECT_EQ(two[11], "6.71e6");
}

TEST(Table, OneRankNotesSayWhyBusbwIsZero) {
  const std::string notes = table_notes(1);
  ASSERT_FALSE(notes.empty());
  EXPECT_EQ(notes.back(), '\n');
  for (const auto& line : lines_of(notes)) EXPECT_EQ(line.rfind("# ", 0), 0u) << line;
  EXPECT_NE(notes.find("one rank"), std::string::npos) << notes;
  EXPECT_NE(notes.find("busbw is 0 by definition"), std::string::npos) << notes;
  EXPECT_NE(notes.find("only correctness is judged"), std::string::npos) << notes;
  EXPECT_NE(notes.find("n/a"), std::string::npos) << notes;
  EXPECT_EQ(table_notes(2), "");
  EXPECT_EQ(table_notes(8), "");
}

TEST(Report, VerdictOnTheLargestMessageNotTheAverage) {
  // Small messages are slow; the largest reaches 20 GB/s busbw on 2 ranks.
  std::vector<SizeResult> run = {result(8, 1000.0), result(1'000'000'000, 50'000.0)};
  Verdict ok = judge(run, 2, 18.0);
  EXPECT_TRUE(ok.pass) << ok.line;
  EXPECT_EQ(ok.line.rfind("PASS", 0), 0u);
  Verdict slow = judge(run, 2, 25.0);
  EXPECT_FALSE(slow.pass);
  EXPECT_NE(slow.line.find("below the expected 25.00"), std::string::npos) << slow.line;
  run[0].in_place_wrong = 1;
  Verdict wrong = judge(run, 2, 18.0);
  EXPECT_FALSE(wrong.pass);
  EXPECT_NE(wrong.line.find("1 wrong"), std::string::npos) << wrong.line;
  EXPECT_FALSE(judge({}, 2, 1.0).pass);
  EXPECT_TRUE(judge({result(8, 1.0)}, 2, 0).pass);  // no figure: correctness only
  // One rank: busbw is 0 by definition; only correctness is judged, and the
  // line says why the figure was not used.
  Verdict alone = judge({result(8, 1000.0), result(1'000'000'000, 50'000.0)}, 1, 18.0);
  EXPECT_TRUE(alone.pass);
  EXPECT_NE(alone.line.find("one rank"), std::string::npos) << alone.line;
}

}  // namespace
}  // namespace deepops::bench

namespace deepops::bench {
namespace {

EnvGet env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Launch, SrunWithUnevenNodes) {
  // srun -n5 on 3 nodes: 2,2,1 tasks; this is task 4, alone on node 2.
  auto l = detect_launch(env_of({{"SLURM_PROCID", "4"},
                                 {"SLURM_STEP_NUM_TASKS", "5"},
                                 {"SLURM_LOCALID", "0"},
                                 {"SLURM_NODEID", "2"},
                                 {"SLURM_STEP_TASKS_PER_NODE", "2(x2),1"}}));
  EXPECT_EQ(l.launcher, "srun");
  EXPECT_EQ(l.rank, 4);
  EXPECT_EQ(l.size, 5);
  EXPECT_EQ(l.local_rank, 0);
  EXPECT_EQ(l.local_size, 1);
  EXPECT_EQ(tasks_on_node("2(x2),1", 1), 2);
  EXPECT_EQ(tasks_on_node("4", 0), 4);
  EXPECT_THROW(tasks_on_node("2(x2),1", 3), std::invalid_argument);
}

TEST(Launch, MpirunBeforeSlurmAndPmi) {
  auto ompi = detect_launch(env_of({{"SLURM_PROCID", "0"},
                                    {"SLURM_NTASKS", "1"},
                                    {"OMPI_COMM_WORLD_RANK", "3"},
                                    {"OMPI_COMM_WORLD_SIZE", "8"},
                                    {"OMPI_COMM_WORLD_LOCAL_RANK", "3"},
                                    {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}}));
  EXPECT_EQ(ompi.launcher, "mpirun");
  EXPECT_EQ(ompi.rank, 3);
  EXPECT_EQ(ompi.size, 8);
  EXPECT_EQ(ompi.local_size, 4);
  auto pmi = detect_launch(env_of({{"PMI_RANK", "1"}, {"PMI_SIZE", "2"}}));
  EXPECT_EQ(pmi.launcher, "mpirun");
  EXPECT_EQ(pmi.rank, 1);
  EXPECT_EQ(pmi.size, 2);
  auto none = detect_launch(env_of({}));
  EXPECT_EQ(none.launcher, "single");
  EXPECT_EQ(none.size, 1);
}

TEST(Launch, ContradictionsAreErrors) {
  EXPECT_THROW(detect_launch(env_of({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}})),
               std::invalid_argument);
  EXPECT_THROW(detect_launch(env_of({{"PMI_RANK", "x"}})), std::invalid_argument);
}

TEST(Launch, GpuForBothBindingStyles) {
  EXPECT_EQ(gpu_for_rank(3, 1), 0);  // --gpus-per-task=1: the one it sees
  EXPECT_EQ(gpu_for_rank(3, 8), 3);  // all visible: by local rank
  EXPECT_EQ(gpu_for_rank(8, 8), -1);
  EXPECT_EQ(gpu_for_rank(0, 0), -1);
  EXPECT_EQ(gpu_for_rank(3, 2, 2), 0);  // -g 2, --gpus-per-task=2
  EXPECT_EQ(gpu_for_rank(3, 8, 2), 6);  // -g 2, all 8 visible: devices 6 and 7
  EXPECT_EQ(gpu_for_rank(4, 8, 2), -1);
}

TEST(Launch, RendezvousFromMasterAddrSrunOrLoopback) {
  auto env_of = [](std::map<std::string, std::string> m) {
    return [m](const std::string& k) -> std::optional<std::string> {
      auto it = m.find(k);
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  };
  auto first = [](const std::string& list) { return list.substr(0, list.find('[')) + "1"; };
  LaunchInfo srun;
  srun.launcher = "srun";
  EXPECT_EQ(default_rendezvous(srun, env_of({{"MASTER_ADDR", "node7"}}), first), "node7:29400");
  EXPECT_EQ(default_rendezvous(srun, env_of({{"MASTER_ADDR", "a"}, {"MASTER_PORT", "5"}}), first),
            "a:5");
  // Under srun: the step's first node, a port from the job and step.
  const std::string a = default_rendezvous(
      srun,
      env_of(
          {{"SLURM_STEP_NODELIST", "gpu[1-4]"}, {"SLURM_JOB_ID", "100"}, {"SLURM_STEP_ID", "0"}}),
      first);
  const std::string b = default_rendezvous(
      srun,
      env_of(
          {{"SLURM_STEP_NODELIST", "gpu[1-4]"}, {"SLURM_JOB_ID", "100"}, {"SLURM_STEP_ID", "1"}}),
      first);
  EXPECT_EQ(a.rfind("gpu1:", 0), 0u) << a;
  EXPECT_NE(a, b);  // two steps of one job on one node do not share a port
  EXPECT_EQ(default_rendezvous(LaunchInfo{}, env_of({}), first), "127.0.0.1:29400");
}

TEST(Launch, FirstHostOfASlurmHostlist) {
  EXPECT_EQ(slurm_first_host("n[3-5,9],gpu1"), "n3");
  EXPECT_EQ(slurm_first_host("login"), "login");
}

}  // namespace
}  // namespace deepops::bench
