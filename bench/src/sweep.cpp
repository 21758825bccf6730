#include "sweep.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <sstream>

#include "subprocess.hpp"

namespace deepops::bench {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string gbps_text(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f GB/s", v);
  return text;
}

std::vector<std::vector<std::pair<int, int>>> pair_rounds(int n) {
  std::vector<std::vector<std::pair<int, int>>> rounds;
  if (n < 2) return rounds;
  const int m = n % 2 ? n + 1 : n;  // odd: a ghost node m-1 marks who sits out
  std::vector<int> seat(static_cast<size_t>(m));
  for (int i = 0; i < m; ++i) seat[static_cast<size_t>(i)] = i;
  for (int r = 0; r < m - 1; ++r) {
    std::vector<std::pair<int, int>> round;
    for (int i = 0; i < m / 2; ++i) {
      int a = seat[static_cast<size_t>(i)], b = seat[static_cast<size_t>(m - 1 - i)];
      if (a >= n || b >= n) continue;
      round.emplace_back(std::min(a, b), std::max(a, b));
    }
    rounds.push_back(round);
    std::rotate(seat.begin() + 1, seat.end() - 1, seat.end());  // seat 0 stays, the rest turn
  }
  return rounds;
}

SweepAnalysis analyse_sweep(const std::vector<std::string>& names,
                            const std::vector<PairResult>& pairs, double threshold, double expect) {
  SweepAnalysis s;
  const size_t n = names.size();
  std::vector<std::vector<double>> seen(n);
  for (const auto& p : pairs) {
    if (!p.ok) continue;
    seen[static_cast<size_t>(p.a)].push_back(p.busbw);
    seen[static_cast<size_t>(p.b)].push_back(p.busbw);
  }
  std::vector<double> bests;
  for (size_t i = 0; i < n; ++i) {
    NodeVerdict v;
    v.name = names[i];
    v.failed = seen[i].empty();
    if (!v.failed) {
      v.best = *std::max_element(seen[i].begin(), seen[i].end());
      v.median = median(seen[i]);
      bests.push_back(v.best);
    }
    s.nodes.push_back(v);
  }
  s.reference = median(bests);
  const double bar = expect > 0 ? expect : threshold * s.reference;
  for (auto& v : s.nodes) {
    if (v.failed) {
      s.findings.push_back("FAILED NODE: " + v.name + ": no all-reduce with it ran (below)");
    } else if (v.best < bar) {
      v.slow = true;
      char pct[32];
      std::snprintf(pct, sizeof(pct), "%.0f%%", 100.0 * v.best / std::max(s.reference, 1e-12));
      s.findings.push_back("SLOW NODE: " + v.name + ": its best pair reaches " + gbps_text(v.best) +
                           ", " + pct + " of the nodes' median best (" + gbps_text(s.reference) +
                           (expect > 0 ? "; expected " + gbps_text(expect) : "") + ")");
    }
  }
  for (const auto& p : pairs) {
    const auto& na = s.nodes[static_cast<size_t>(p.a)];
    const auto& nb = s.nodes[static_cast<size_t>(p.b)];
    if (!p.ok) {
      s.findings.push_back("FAILED PAIR: " + na.name + " + " + nb.name + ": " + p.problem);
      continue;
    }
    if (na.slow || nb.slow || na.failed || nb.failed) continue;
    const double slower = std::min(na.best, nb.best);
    if (p.busbw < threshold * slower) {
      s.slow_links.push_back({p.a, p.b, p.busbw, slower});
      s.findings.push_back("SLOW LINK: " + na.name + " <-> " + nb.name + ": " + gbps_text(p.busbw) +
                           " while both nodes reach " + gbps_text(slower) + " with others");
    }
  }
  s.pass = s.findings.empty();
  return s;
}

std::string node_address(const std::string& out, const std::string& name) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string word, node, addr;
    while (words >> word) {
      if (word.rfind("NodeName=", 0) == 0) node = word.substr(9);
      if (word.rfind("NodeAddr=", 0) == 0) addr = word.substr(9);
    }
    if (node == name && !addr.empty()) return addr;
  }
  return "";
}

std::string slurm_node_address(const std::string& node) {
  return node_address(
      run_and_read({"scontrol", "show", "node", "-o", node}, std::chrono::seconds(60)), node);
}

std::optional<std::string> rank0_json(const std::string& out) {
  std::string json;
  bool inside = false;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    const size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    std::string task = line.substr(0, colon);
    task.erase(0, task.find_first_not_of(' '));
    if (task != "0") continue;
    const std::string text = line.substr(colon + 2);
    if (!inside && text != "{") continue;
    inside = true;
    json += text + "\n";
    if (text == "}") return json;
  }
  return std::nullopt;
}

}  // namespace deepops::bench
