#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace deepops::cli {

struct StartArgs {
  std::vector<std::string> mounts;
  std::vector<std::string> env;
  std::string workdir;
  bool writable = false;
  bool readonly = false;
  bool remap_root = false;
  bool no_remap_root = false;
  bool mount_home = false;
  bool no_mount_home = false;
  bool restrict_dev = false;
  std::string entrypoint;
  bool entrypoint_set = false;
  std::vector<std::string> unshare;
};

CLI::App* add_start_command(CLI::App& app, StartArgs& args);
int run_start(const StartArgs& args, const std::vector<std::string>& image_and_command,
              const std::string& cache);

}  // namespace deepops::cli
