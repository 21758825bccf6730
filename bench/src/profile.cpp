#include "profile.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace deepops::bench {
namespace {

namespace fs = std::filesystem;

double number(const std::string& value, const std::string& where) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || !std::isfinite(v) || v < 0) {
    throw std::invalid_argument(where + ": '" + value + "' is not a non-negative number");
  }
  return v;
}

int whole(const std::string& value, const std::string& where) {
  double v = number(value, where);
  if (v != std::floor(v) || v > 1e6) {
    throw std::invalid_argument(where + ": '" + value + "' is not a whole number");
  }
  return static_cast<int>(v);
}

std::string known_profiles(const std::vector<std::string>& dirs) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& d : dirs) {
    for (const auto& e : fs::directory_iterator(d, ec)) {
      if (e.path().extension() == ".conf") names.push_back(e.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

}  // namespace

Profile parse_profile(std::string_view text, const std::string& name) {
  Profile p;
  p.name = name;
  std::istringstream lines{std::string(text)};
  int number_of_line = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number_of_line;
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string key, value, extra;
    if (!(words >> key)) continue;
    const std::string where = name + " line " + std::to_string(number_of_line);
    if (!(words >> value) || (words >> extra)) {
      throw std::invalid_argument(where + ": want 'key value', got '" + line + "'");
    }
    if (key == "gpus_per_node") {
      p.gpus_per_node = whole(value, where);
    } else if (key == "nics_per_node") {
      p.nics_per_node = whole(value, where);
    } else if (key == "intra_node_busbw") {
      p.intra_node_busbw = number(value, where);
    } else if (key == "per_nic_busbw") {
      p.per_nic_busbw = number(value, where);
    } else if (key == "accept") {
      p.accept = number(value, where);
      if (p.accept <= 0 || p.accept > 1) {
        throw std::invalid_argument(where + ": accept is a fraction in (0, 1]");
      }
    } else {
      throw std::invalid_argument(where + ": unknown key '" + key +
                                  "' (gpus_per_node, nics_per_node, intra_node_busbw, "
                                  "per_nic_busbw, accept)");
    }
  }
  if (p.intra_node_busbw <= 0 && p.per_nic_busbw <= 0) {
    throw std::invalid_argument(name + ": gives neither intra_node_busbw nor per_nic_busbw");
  }
  return p;
}

Profile load_profile(const std::string& name, const std::vector<std::string>& dirs) {
  std::vector<fs::path> candidates;
  if (name.find('/') != std::string::npos) {
    candidates.emplace_back(name);
  } else {
    for (const auto& d : dirs) candidates.push_back(fs::path(d) / (name + ".conf"));
  }
  for (const auto& c : candidates) {
    std::ifstream in(c);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    return parse_profile(text.str(), c.stem().string());
  }
  std::string looked;
  for (const auto& c : candidates) looked += (looked.empty() ? "" : ", ") + c.string();
  throw std::invalid_argument("no profile '" + name + "' (looked at " + looked +
                              "); profiles there: " + known_profiles(dirs) +
                              ". Give a file path, or add a folder of NAME.conf files to "
                              "DEEPOPS_BENCH_PROFILES (colon-separated, looked in before "
                              "/etc/deepops/bench)");
}

Expectation expected_busbw(const Profile& p, int nodes, int ranks_per_node) {
  Expectation e;
  char why[256];
  if (nodes <= 1 && p.intra_node_busbw <= 0) {
    std::snprintf(why, sizeof(why), "%s gives no intra_node_busbw for a run within one node",
                  p.name.c_str());
  } else if (nodes <= 1 || p.per_nic_busbw <= 0) {
    e.busbw = p.intra_node_busbw;
    std::snprintf(why, sizeof(why), "%s: %.0f GB/s within a node", p.name.c_str(), e.busbw);
  } else {
    int nics = p.nics_per_node;
    if (p.gpus_per_node > 0 && ranks_per_node < p.gpus_per_node) {
      nics =
          std::max(1, (p.nics_per_node * ranks_per_node + p.gpus_per_node - 1) / p.gpus_per_node);
    }
    nics = std::max(nics, 1);
    e.busbw = p.per_nic_busbw * nics;
    if (p.intra_node_busbw > 0) e.busbw = std::min(e.busbw, p.intra_node_busbw);
    std::snprintf(why, sizeof(why), "%s: %d nodes, %d NIC(s) each x %.0f GB/s", p.name.c_str(),
                  nodes, nics, p.per_nic_busbw);
  }
  e.minimum = e.busbw * p.accept;
  e.why = why;
  return e;
}

}  // namespace deepops::bench
