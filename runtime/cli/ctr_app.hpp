#pragma once

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "start_command.hpp"

namespace deepops::cli {

struct ImportArgs {
  std::string image;
  std::string output;
  std::string arch;
  std::string compression = "zstd";
  int level = 0;
  unsigned jobs = 4;
  std::string ca_file;
  std::vector<std::string> allow_http;
  std::vector<std::string> system_caches;
  std::vector<std::string> mirrors;
  std::string mirrors_config;
  std::string owners = "root";
  bool quiet = false;
};

// deepops-ctr's command line, declared once for the program and for the
// tests of its help: every option bound to the fields below. Neither copied
// nor moved, since the options refer to them.
struct CtrCli {
  explicit CtrCli(const std::string& version);
  CtrCli(const CtrCli&) = delete;
  CtrCli& operator=(const CtrCli&) = delete;

  std::string cache;
  ImportArgs import_args;
  bool as_json = false;
  bool list_containers = false;
  std::vector<std::string> remove_names;
  std::string max_size;
  StartArgs start_args;
  ContainerArgs container_args;

  CLI::App app;
  CLI::App* import_cmd = nullptr;
  CLI::App* digest_cmd = nullptr;
  CLI::App* list_cmd = nullptr;
  CLI::App* remove_cmd = nullptr;
  CLI::App* gc_cmd = nullptr;
  CLI::App* check_cmd = nullptr;
  CLI::App* start_cmd = nullptr;
  CLI::App* create_cmd = nullptr;
  CLI::App* exec_cmd = nullptr;
  CLI::App* export_cmd = nullptr;
};

// The exit status of a usage error (an unknown command or option, a missing
// argument), as CLI11 and most tools have it.
constexpr int kUsageError = 2;

// Parses argv into cli. Returns -1 when the command is to run; otherwise the
// exit status, once --help or --version was printed on out, or a usage error
// on err (a mistyped command named with the nearest: "did you mean 'start'?").
int parse_command_line(CtrCli& cli, int argc, const char* const* argv,
                       std::ostream& out = std::cout, std::ostream& err = std::cerr);

}  // namespace deepops::cli
