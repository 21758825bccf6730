#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "subprocess.hpp"

namespace deepops::test {

// A running lab instance (tests/lab/lab up), found by DEEPOPS_LAB_NAME
// (default "main"). Its variables come from the env file that `up` wrote.
class Lab {
 public:
  static const Lab& current();

  const std::string& name() const { return name_; }
  // A variable from the lab's env file; fails the test if absent.
  std::string var(const std::string& key) const;
  bool has(const std::string& key) const { return vars_.count(key) != 0; }
  int nodes() const { return std::stoi(var("DEEPOPS_LAB_NODES")); }
  bool netns() const { return var("DEEPOPS_LAB_MODE") == "netns"; }

  // Runs argv as the unprivileged test user inside the lab's environment.
  ProcessResult run_as_user(const std::vector<std::string>& argv,
                            std::chrono::seconds timeout = std::chrono::seconds(120)) const;

 private:
  explicit Lab(std::string name);
  std::string name_;
  std::map<std::string, std::string> vars_;
};

std::vector<std::string> lines_of(const std::string& text);

}  // namespace deepops::test
