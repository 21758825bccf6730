// --help as CLI11 2.3 lays it out, whatever CLI11 printed it: the tests of
// our help texts check what they say, not the layout of the CLI11 release
// they were built with.
#pragma once

#include <regex>
#include <string>

namespace deepops::testing {

// CLI11 2.6 (Debian sid, the 26.05 root) prints "prog start [OPTIONS]"
// without "Usage: ", "[SUBCOMMANDS]" for "SUBCOMMAND", pads short and long
// names apart ("-j,     --jobs", "--rw, --writable"), indents long-only names
// under them, wraps long descriptions onto indented lines and ends lines
// with a space. 2.3 (Debian 12) and 2.4 do none of that.
inline std::string cli11_23_layout(std::string help, const std::string& program) {
  help = std::regex_replace(help, std::regex(R"( +\n)"), "\n");
  if (help.find("Usage: ") == std::string::npos) {
    // A description's wrapped tail goes back on its line.
    help = std::regex_replace(help, std::regex(R"(([^\n ])\n {30}(\S))"), "$1 $2");
  }
  help = std::regex_replace(help, std::regex(R"((\n +-[-\w]+),\s+--)"), "$1,--");
  help = std::regex_replace(help, std::regex(R"(\n {3,}(--\w))"), "\n  $1");
  if (help.find("Usage: ") == std::string::npos) {
    help = std::regex_replace(help, std::regex("\n(" + program + R"(( \S+)* \[OPTIONS\][^\n]*))"),
                              "\nUsage: $1", std::regex_constants::format_first_only);
    help = std::regex_replace(help, std::regex(R"(\[OPTIONS\] \[SUBCOMMANDS\])"),
                              "[OPTIONS] SUBCOMMAND");
  }
  return help;
}

}  // namespace deepops::testing
