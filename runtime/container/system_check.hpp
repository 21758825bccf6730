#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace deepops {

// One line of `deepops-ctr check`.
struct CheckResult {
  enum class Status { ok, warn, fail };
  std::string name;
  Status status = Status::ok;
  std::string detail;  // what was found
  std::string fix;     // for warn/fail: what an admin runs to fix it
};

struct SystemCheckOptions {
  // Where the sysctls and /proc/filesystems are read from; tests point this
  // at a fixture tree.
  std::filesystem::path proc = "/proc";
  std::filesystem::path dev_fuse = "/dev/fuse";
  // Also try the real thing in a forked child: a user namespace, a FUSE
  // mount and an overlay mount inside it.
  bool live = true;
};

// The kernel and system prerequisites of unprivileged containers.
std::vector<CheckResult> run_system_checks(const SystemCheckOptions& options);

const char* to_string(CheckResult::Status s);

}  // namespace deepops
