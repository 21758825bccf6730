#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "cli/ctr_app.hpp"
#include "cli11_help.hpp"

namespace deepops::cli {
namespace {

struct Outcome {
  int status;
  std::string out;
  std::string err;
};

// deepops-ctr's command line parsed, as main() parses it.
Outcome parse(std::vector<const char*> words) {
  CtrCli cli("test");
  words.insert(words.begin(), "deepops-ctr");
  std::ostringstream out, err;
  const int status =
      parse_command_line(cli, static_cast<int>(words.size()), words.data(), out, err);
  return {status, out.str(), err.str()};
}

std::string help_of(const char* command) {
  Outcome o = command[0] ? parse({command, "--help"}) : parse({"--help"});
  EXPECT_EQ(o.status, 0) << command << ": " << o.err;
  return deepops::testing::cli11_23_layout(o.out, "deepops-ctr");
}

const char* const kCommands[] = {"import", "digest", "list",   "remove", "gc",
                                 "check",  "start",  "create", "exec",   "export"};

TEST(CtrCli, EveryCommandHasHelp) {
  CtrCli cli("test");
  std::vector<std::string> declared;
  for (const auto* sub : cli.app.get_subcommands([](const CLI::App*) { return true; })) {
    declared.push_back(sub->get_name());
  }
  EXPECT_EQ(declared, std::vector<std::string>(std::begin(kCommands), std::end(kCommands)))
      << "a new command: add it to kCommands, so that its help is checked";
  for (const char* command : kCommands) {
    EXPECT_NE(help_of(command).find(std::string("Usage: deepops-ctr ") + command + " [OPTIONS]"),
              std::string::npos)
        << command;
  }
}

TEST(CtrCli, UsageLinesNameTheArguments) {
  const std::pair<const char*, const char*> usage[] = {
      {"start", "Usage: deepops-ctr start [OPTIONS] IMAGE [COMMAND...]\n"},
      {"exec", "Usage: deepops-ctr exec [OPTIONS] NAME COMMAND [ARG...]\n"},
      {"import", "Usage: deepops-ctr import [OPTIONS] IMAGE\n"},
      {"create", "Usage: deepops-ctr create [OPTIONS] IMAGE\n"},
      {"remove", "Usage: deepops-ctr remove [OPTIONS] NAME...\n"},
      {"export", "Usage: deepops-ctr export [OPTIONS] NAME OUTPUT\n"},
      {"list", "Usage: deepops-ctr list [OPTIONS]\n"},
      {"gc", "Usage: deepops-ctr gc [OPTIONS]\n"},
      {"check", "Usage: deepops-ctr check [OPTIONS]\n"},
      {"", "Usage: deepops-ctr [OPTIONS] SUBCOMMAND\n"},
  };
  for (const auto& [command, line] : usage) {
    const std::string help = help_of(command);
    EXPECT_NE(help.find(line), std::string::npos) << help;
    EXPECT_EQ(help.find("Usage:", help.find("Usage:") + 1), std::string::npos)
        << "one usage line only: " << help;
  }
}

TEST(CtrCli, HelpShowsReadableValueNamesAndNoSourceFiles) {
  const std::regex cli11_names(R"(\b(TEXT|INT|UINT|FLOAT|NUMBER)\b|INT:|:\{| in \[)");
  std::vector<const char*> all(std::begin(kCommands), std::end(kCommands));
  all.push_back("");
  for (const char* command : all) {
    const std::string help = help_of(command);
    EXPECT_FALSE(std::regex_search(help, cli11_names)) << command << ":\n" << help;
    EXPECT_EQ(help.find("README"), std::string::npos) << command << ":\n" << help;
    // Flags show no value name.
    EXPECT_TRUE(std::regex_search(help, std::regex(R"(\n  -h,--help +Print)"))) << help;
  }
  EXPECT_NE(help_of("").find("man deepops-ctr"), std::string::npos);
  EXPECT_NE(help_of("").find("--cache DIR"), std::string::npos);
  const std::string import = help_of("import");
  // CLI11 2.3 shows a default as "N=4", 2.4 and later as "N [4]".
  EXPECT_TRUE(std::regex_search(import, std::regex(R"(-j,--jobs N(=| \[)4)"))) << import;
  EXPECT_NE(import.find("parallel layer downloads (1 to 32)"), std::string::npos) << import;
  EXPECT_TRUE(std::regex_search(import, std::regex(R"(--level N(=| \[)0)"))) << import;
  EXPECT_NE(import.find("see man deepops-ctr"), std::string::npos) << import;
  EXPECT_NE(import.find("--owners root|keep"), std::string::npos) << import;
  EXPECT_NE(import.find("IMAGE REQUIRED"), std::string::npos) << import;
  const std::string start = help_of("start");
  EXPECT_NE(start.find("-e,--env NAME[=VALUE]"), std::string::npos) << start;
  EXPECT_NE(start.find("--unshare net|ipc|uts"), std::string::npos) << start;
  EXPECT_TRUE(std::regex_search(start, std::regex(R"(\n  --rw,--writable +make)"))) << start;
  EXPECT_NE(help_of("gc").find("--max-size SIZE"), std::string::npos);
}

TEST(CtrCli, UnknownCommandNamesTheNearest) {
  Outcome o = parse({"strat"});
  EXPECT_EQ(o.status, kUsageError);
  EXPECT_EQ(o.err, "deepops-ctr: unknown command 'strat'; did you mean 'start'?\n");
  EXPECT_EQ(o.out, "");

  o = parse({"--cache", "/tmp/cache", "exprot", "name", "out.sqsh"});
  EXPECT_EQ(o.status, kUsageError);
  EXPECT_EQ(o.err, "deepops-ctr: unknown command 'exprot'; did you mean 'export'?\n");

  o = parse({"--cache=/tmp/cache", "frobnicate"});
  EXPECT_EQ(o.status, kUsageError);
  EXPECT_EQ(
      o.err,
      "deepops-ctr: unknown command 'frobnicate'; the commands are: import, digest, list, remove, "
      "gc, check, start, create, exec, export\n");
}

TEST(CtrCli, OtherUsageErrorsAreCli11s) {
  // No arguments at all: the whole help, and still a usage error.
  Outcome o = parse({});
  EXPECT_EQ(o.status, kUsageError);
  EXPECT_NE(o.out.find("--cache"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("import"), std::string::npos) << o.out;
  o = parse({"--cache", "strat"});  // strat is the folder; no command given
  EXPECT_EQ(o.status, kUsageError);
  EXPECT_EQ(o.err.find("unknown command"), std::string::npos) << o.err;
  o = parse({"import", "-j", "40", "ubuntu"});
  EXPECT_EQ(o.status, kUsageError);
  // CLI11 2.3: "not in range 1 to 32"; 2.4 and later: "not in range [1 - 32]".
  EXPECT_TRUE(std::regex_search(o.err, std::regex(R"(Value 40 not in range (1 to 32|\[1 - 32\]))")))
      << o.err;
  o = parse({"import", "--owners", "me", "ubuntu"});
  EXPECT_EQ(o.status, kUsageError);
  EXPECT_NE(o.err.find("me not in {root,keep}"), std::string::npos) << o.err;
}

TEST(CtrCli, CommandsStillParse) {
  CtrCli cli("test");
  const char* argv[] = {"deepops-ctr", "--cache", "/c",   "start", "--rw", "-e",
                        "A=1",         "ubuntu",  "echo", "-e",    "hi"};
  std::ostringstream out, err;
  ASSERT_EQ(parse_command_line(cli, 11, argv, out, err), -1) << err.str();
  EXPECT_TRUE(*cli.start_cmd);
  EXPECT_EQ(cli.cache, "/c");
  EXPECT_TRUE(cli.start_args.writable);
  EXPECT_EQ(cli.start_args.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(cli.start_cmd->remaining(), (std::vector<std::string>{"ubuntu", "echo", "-e", "hi"}));

  CtrCli cli2("test");
  const char* argv2[] = {"deepops-ctr", "import", "-j", "8", "--owners", "keep", "ubuntu"};
  ASSERT_EQ(parse_command_line(cli2, 7, argv2, out, err), -1) << err.str();
  EXPECT_EQ(cli2.import_args.jobs, 8u);
  EXPECT_EQ(cli2.import_args.owners, "keep");
  EXPECT_EQ(cli2.import_args.image, "ubuntu");
}

TEST(CtrCli, VersionIsPrinted) {
  Outcome o = parse({"--version"});
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.out, "deepops-ctr test\n");
}

}  // namespace
}  // namespace deepops::cli
