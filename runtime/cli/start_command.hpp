#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "config/settings.hpp"

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
  bool no_seccomp = false;
  std::string entrypoint;
  bool entrypoint_set = false;
  std::vector<std::string> unshare;
};

CLI::App* add_start_command(CLI::App& app, StartArgs& args);
int run_start(const StartArgs& args, const std::vector<std::string>& image_and_command,
              const Settings& settings);

// Named containers: create, exec, export, and their parts of list and remove.
struct ContainerArgs {
  std::string create_name;
  std::string create_image;
  std::vector<std::string> exec_env;
  std::string exec_workdir;
  bool exec_no_seccomp = false;
  std::string export_name;
  std::string export_output;
};
CLI::App* add_create_command(CLI::App& app, ContainerArgs& args);
CLI::App* add_exec_command(CLI::App& app, ContainerArgs& args);
CLI::App* add_export_command(CLI::App& app, ContainerArgs& args);
int run_create(const ContainerArgs& args, const Settings& settings);
int run_exec(const ContainerArgs& args, const std::vector<std::string>& name_and_command,
             const Settings& settings);
int run_export(const ContainerArgs& args, const Settings& settings);
int run_list_containers(const Settings& settings, bool as_json);
// Removes `name` if it is a named container; false if there is none.
bool remove_container_if_named(const Settings& settings, const std::string& name);

}  // namespace deepops::cli
