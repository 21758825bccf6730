#pragma once

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

// deepops-enroot's command line: Enroot's commands and options, declared
// once for the program and for the tests of its help.
namespace deepops::enroot {

struct EnrootArgs {
  std::string arch;
  std::string output;
  std::string name;
  bool force = false;
  bool fancy = false;
  std::string conf;
  std::string rc;
  std::vector<std::string> env;
  std::vector<std::string> mounts;
  bool root = false;
  bool rw = false;
  bool pid = false, net = false, ipc = false, uts = false;
  std::string uri;
  std::string image;
  std::vector<std::string> names;
};

struct EnrootCli {
  explicit EnrootCli(const std::string& version);
  EnrootCli(const EnrootCli&) = delete;
  EnrootCli& operator=(const EnrootCli&) = delete;

  EnrootArgs args;
  CLI::App app;
  CLI::App *batch = nullptr, *bundle = nullptr, *create = nullptr, *digest = nullptr,
           *exec = nullptr, *export_cmd = nullptr, *import = nullptr, *list = nullptr,
           *load = nullptr, *remove = nullptr, *start = nullptr, *info = nullptr,
           *version = nullptr;

  // The words after the options of start, exec and batch: NAME|IMAGE
  // [COMMAND...], PID COMMAND..., CONFIG [COMMAND...].
  std::vector<std::string> rest() const;
};

// As Enroot: a usage error exits 1.
constexpr int kEnrootUsageError = 1;

// Parses argv. Returns -1 when a command is to run; otherwise the exit
// status, once help was printed on `out` or a usage error on `err`.
int parse_enroot_command_line(EnrootCli& cli, int argc, const char* const* argv,
                              std::ostream& out = std::cout, std::ostream& err = std::cerr);

}  // namespace deepops::enroot
