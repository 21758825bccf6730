#include "lab.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace deepops::test {

Lab::Lab(std::string name) : name_(std::move(name)) {
  const char* root = std::getenv("DEEPOPS_LAB_ROOT");
  std::string path = std::string(root ? root : "/var/lib/deepops-lab") + "/" + name_ + "/env";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("lab '" + name_ + "' is not up: no " + path);
  std::string line;
  while (std::getline(in, line)) {
    constexpr std::string_view kExport = "export ";
    if (!line.starts_with(kExport)) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    vars_[line.substr(kExport.size(), eq - kExport.size())] = line.substr(eq + 1);
  }
}

const Lab& Lab::current() {
  const char* name = std::getenv("DEEPOPS_LAB_NAME");
  static const Lab lab(name ? name : "main");
  return lab;
}

std::string Lab::var(const std::string& key) const {
  auto it = vars_.find(key);
  if (it == vars_.end()) throw std::runtime_error("lab '" + name_ + "' has no " + key);
  return it->second;
}

ProcessResult Lab::run_as_user(const std::vector<std::string>& argv,
                               std::chrono::seconds timeout) const {
  std::vector<std::string> full = {DEEPOPS_SOURCE_DIR "/tests/lab/lab", "run", "--name", name_,
                                   "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_process(full, timeout);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace deepops::test
