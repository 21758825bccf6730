#pragma once

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// What CLI11 leaves to the program: naming a mistyped command, usage lines
// for commands whose arguments CLI11 does not parse, and readable value
// names in --help. Library deepops-cli-help: CLI11's headers and
// deepops-closest-match, nothing of the runtime, so that deepops-bench can
// link it too.
namespace deepops {

// The names (and aliases) of app's subcommands, in the order declared,
// those in nameless option groups included.
std::vector<std::string> subcommand_names(const CLI::App& app);

// The word of argv (argv[0] being the program) that CLI11 would take as
// app's subcommand, when it is none of app's subcommands: the first word that
// is neither an option of app nor a value of one ("--cache DIR", "-jN",
// "--cache=DIR"). nullopt when that word is a subcommand, when there is no
// such word, when an option before it is not app's (it may take the word),
// or when app takes positionals of its own (the word may be one).
std::optional<std::string> unknown_subcommand(const CLI::App& app, int argc,
                                              const char* const* argv);

// "unknown command 'strat'; did you mean 'start'?", or, with nothing close,
// "unknown command 'x'; the commands are: import, list, ...".
std::string unknown_subcommand_message(const CLI::App& app, std::string_view word);

// Parses argv into app, as the programs' main() do. Returns -1 when a
// command is to run; otherwise the exit status: 0 once --help or --version
// was printed on `out`, `usage_error` once a usage error was printed on
// `err`, a mistyped command as "PROGRAM: unknown command 'strat'; did you
// mean 'start'?". With no arguments at all where a command is required, the
// help goes to `out` and the status is `usage_error`.
int parse_or_explain(CLI::App& app, std::string_view program, int usage_error, int argc,
                     const char* const* argv, std::ostream& out = std::cout,
                     std::ostream& err = std::cerr);

// The arguments that the usage line of app shows after [OPTIONS], for a
// command that takes them itself (prefix_command): "IMAGE [COMMAND...]".
void set_usage_arguments(CLI::App& app, std::string arguments);

// Readable value names in the --help of app and of all its subcommands: call
// it once every option is declared. Where no name was given (type_name),
// CLI11's TEXT, INT, UINT... become the choices of an IsMember check
// ("root|keep"), the name of a FILE, DIR or PATH check, N for numbers, else
// the option's long name in upper case (--ca-file CA_FILE). The descriptions
// CLI11 would append to the name (":INT in [1 - 32]", ":{a,b}") are dropped;
// a range is said in the option's text instead ("(1 to 32)"), unless the
// text says so already. Positionals show no value name ("IMAGE REQUIRED").
// The checks themselves, and their error messages, stay as they were.
void make_help_readable(CLI::App& app);

}  // namespace deepops
