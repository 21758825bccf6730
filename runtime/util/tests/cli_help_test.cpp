#include "util/cli_help.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <regex>

#include "cli11_help.hpp"

namespace deepops {
namespace {

// A program as deepops-ctr and deepops-bench are: global options, one of
// which takes a value, then a command.
struct Program {
  std::string config;
  std::vector<std::string> tags;
  bool verbose = false;
  CLI::App app{"a test program", "prog"};

  Program() {
    app.require_subcommand(1);
    app.add_option("-c,--config", config, "settings file");
    app.add_option("-t,--tag", tags, "tags");
    app.add_flag("-v,--verbose", verbose, "say more");
    app.add_subcommand("start", "start it");
    app.add_subcommand("stop", "stop it");
    app.add_subcommand("status", "say how it is")->alias("st");
  }
};

std::optional<std::string> unknown(const std::vector<const char*>& words) {
  Program p;
  std::vector<const char*> argv = {"prog"};
  argv.insert(argv.end(), words.begin(), words.end());
  auto found = unknown_subcommand(p.app, static_cast<int>(argv.size()), argv.data());
  // Whenever a word is named, CLI11 itself refuses the command line.
  Program q;
  if (found) {
    EXPECT_THROW(q.app.parse(static_cast<int>(argv.size()), argv.data()), CLI::ParseError);
  }
  return found;
}

TEST(UnknownSubcommand, NamesTheFirstWordThatIsNoCommand) {
  EXPECT_EQ(unknown({"strat"}), "strat");
  EXPECT_EQ(unknown({"strat", "start"}), "strat");
  EXPECT_EQ(unknown({"-v", "strat"}), "strat");
  EXPECT_EQ(unknown({"--verbose", "strat"}), "strat");
}

TEST(UnknownSubcommand, NothingWhenTheCommandIsKnown) {
  EXPECT_EQ(unknown({"start"}), std::nullopt);
  EXPECT_EQ(unknown({"st"}), std::nullopt);  // an alias
  EXPECT_EQ(unknown({"stop", "strat"}), std::nullopt);
  EXPECT_EQ(unknown({}), std::nullopt);
  EXPECT_EQ(unknown({"-v"}), std::nullopt);
  // An option that is not the program's may take the word as its value.
  EXPECT_EQ(unknown({"--nope", "strat"}), std::nullopt);
  EXPECT_EQ(unknown({"-x", "strat"}), std::nullopt);
}

TEST(UnknownSubcommand, SkipsTheValuesOfOptions) {
  EXPECT_EQ(unknown({"--config", "strat", "start"}), std::nullopt);
  EXPECT_EQ(unknown({"--config", "strat"}), std::nullopt);  // a value, and no command
  EXPECT_EQ(unknown({"--config", "file", "strat"}), "strat");
  EXPECT_EQ(unknown({"--config=file", "strat"}), "strat");
  EXPECT_EQ(unknown({"-c", "file", "strat"}), "strat");
  EXPECT_EQ(unknown({"-cfile", "strat"}), "strat");
  EXPECT_EQ(unknown({"-vc", "file", "strat"}), "strat");
  EXPECT_EQ(unknown({"-c", "-v", "strat"}), "strat");  // -c takes "-v" as its value
}

TEST(UnknownSubcommand, AListOptionTakesWordsUpToTheCommand) {
  EXPECT_EQ(unknown({"--tag", "a", "b", "start"}), std::nullopt);
  EXPECT_EQ(unknown({"--tag", "a", "-v", "strat"}), "strat");
}

TEST(UnknownSubcommand, NothingAfterDoubleDashOrWhenTheProgramTakesPositionals) {
  EXPECT_EQ(unknown({"--", "strat"}), std::nullopt);
  CLI::App app("positionals", "prog");
  std::string file;
  app.add_option("FILE", file);
  app.add_subcommand("start");
  const char* argv[] = {"prog", "strat"};
  EXPECT_EQ(unknown_subcommand(app, 2, argv), std::nullopt);
}

TEST(UnknownSubcommand, MessageNamesTheNearestCommandOrAllOfThem) {
  Program p;
  EXPECT_EQ(unknown_subcommand_message(p.app, "strat"),
            "unknown command 'strat'; did you mean 'start'?");
  EXPECT_EQ(unknown_subcommand_message(p.app, "stauts"),
            "unknown command 'stauts'; did you mean 'status'?");
  EXPECT_EQ(unknown_subcommand_message(p.app, "frobnicate"),
            "unknown command 'frobnicate'; the commands are: start, stop, status");
  EXPECT_EQ(subcommand_names(p.app), (std::vector<std::string>{"start", "stop", "status", "st"}));
}

TEST(ParseOrExplain, NoArgumentsWhereACommandIsRequiredPrintsTheHelp) {
  Program p;
  const char* argv[] = {"prog"};
  std::ostringstream out, err;
  EXPECT_EQ(parse_or_explain(p.app, "prog", 2, 1, argv, out, err), 2);
  EXPECT_NE(out.str().find("a test program"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("status"), std::string::npos) << out.str();
  EXPECT_EQ(err.str(), "");

  Program q;  // an option but no command: CLI11's own message
  const char* with_option[] = {"prog", "-v"};
  std::ostringstream out2, err2;
  EXPECT_EQ(parse_or_explain(q.app, "prog", 2, 2, with_option, out2, err2), 2);
  EXPECT_NE(err2.str().find("subcommand"), std::string::npos) << err2.str();
}

// --help of app's command `sub` ("" for app's own), as the program prints it.
std::string help_of(CLI::App& app, const std::string& sub) {
  std::vector<const char*> argv = {"prog"};
  if (!sub.empty()) argv.push_back(sub.c_str());
  argv.push_back("--help");
  std::ostringstream out, err;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    EXPECT_EQ(app.exit(e, out, err), 0);
  }
  return deepops::testing::cli11_23_layout(out.str(), "prog");
}

// Every kind of option there is, before and after make_help_readable.
struct Typed {
  unsigned jobs = 4;
  int level = 0;
  double expect = 0;
  std::string ca_file, out, mode, input, image;
  std::vector<std::string> words;
  bool quiet = false;
  CLI::App app{"typed options", "prog"};
  CLI::App* run = nullptr;

  Typed() {
    app.add_option("-j,--jobs", jobs, "parallel jobs")->check(CLI::Range(1, 32));
    app.add_option("--level", level, "a level, 0 to 9")->check(CLI::Range(0, 9));
    app.add_option("--expect", expect, "at least this")->check(CLI::PositiveNumber);
    app.add_option("--ca-file", ca_file, "a CA");
    app.add_option("-o,--out", out, "where")->type_name("PATH");
    app.add_option("--mode", mode, "how")->check(CLI::IsMember({"fast", "slow"}));
    app.add_flag("-q,--quiet", quiet, "say less");
    run = app.add_subcommand("run", "run something");
    run->add_option("--input", input, "read this")->check(CLI::ExistingFile);
    run->add_option("IMAGE", image, "the image")->required();
    run->add_option("WORDS", words, "more words");
  }
};

TEST(MakeHelpReadable, LeavesNoTypeNamesOfCli11) {
  // What CLI11 would print otherwise: the test sees the difference.
  Typed before, before_run;
  ASSERT_NE(help_of(before.app, "").find("UINT:INT in [1 - 32]"), std::string::npos);
  ASSERT_NE(help_of(before_run.app, "run").find("TEXT:FILE"), std::string::npos);

  Typed t;
  make_help_readable(t.app);
  const std::string main_help = help_of(t.app, "");
  Typed t2;
  make_help_readable(t2.app);
  const std::string run_help = help_of(t2.app, "run");
  const std::regex cli11_names(R"(\b(TEXT|INT|UINT|FLOAT|NUMBER|POSITIVE)\b|:\{| in \[)");
  EXPECT_FALSE(std::regex_search(main_help, cli11_names)) << main_help;
  EXPECT_FALSE(std::regex_search(run_help, cli11_names)) << run_help;

  // Flags show no value name.
  EXPECT_TRUE(std::regex_search(main_help, std::regex(R"(\n  -q,--quiet +say less\n)")))
      << main_help;
  EXPECT_TRUE(std::regex_search(main_help, std::regex(R"(\n  -h,--help +Print)"))) << main_help;
  EXPECT_NE(main_help.find("-j,--jobs N"), std::string::npos) << main_help;
  EXPECT_NE(main_help.find("parallel jobs (1 to 32)"), std::string::npos) << main_help;
  EXPECT_NE(main_help.find("a level, 0 to 9\n"), std::string::npos) << main_help;  // said once
  EXPECT_NE(main_help.find("--expect N"), std::string::npos) << main_help;
  EXPECT_NE(main_help.find("--ca-file CA_FILE"), std::string::npos) << main_help;
  EXPECT_NE(main_help.find("-o,--out PATH"), std::string::npos) << main_help;
  EXPECT_NE(main_help.find("--mode fast|slow"), std::string::npos) << main_help;
  EXPECT_NE(run_help.find("--input FILE"), std::string::npos) << run_help;
  EXPECT_NE(run_help.find("IMAGE REQUIRED"), std::string::npos) << run_help;
  EXPECT_NE(run_help.find("WORDS ..."), std::string::npos) << run_help;
}

TEST(MakeHelpReadable, KeepsTheChecksAndTheirMessages) {
  auto error_of = [](std::vector<const char*> argv) {
    Typed t;
    make_help_readable(t.app);
    argv.insert(argv.begin(), "prog");
    try {
      t.app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  // CLI11 2.3: "not in range 1 to 32"; 2.4 and later: "not in range [1 - 32]".
  EXPECT_TRUE(std::regex_search(error_of({"-j", "40"}),
                                std::regex(R"(Value 40 not in range (1 to 32|\[1 - 32\]))")))
      << error_of({"-j", "40"});
  EXPECT_NE(error_of({"--mode", "quick"}).find("quick not in {fast,slow}"), std::string::npos)
      << error_of({"--mode", "quick"});
  EXPECT_NE(error_of({"--expect", "-1"}).find("-1"), std::string::npos);
  EXPECT_NE(error_of({"run", "--input", "/no/such/file", "img"}).find("/no/such/file"),
            std::string::npos);
  EXPECT_EQ(error_of({"-j", "32", "--mode", "slow", "run", "img"}), "parsed");
}

TEST(SetUsageArguments, CompletesTheUsageLineOfThatCommandOnly) {
  CLI::App app("usage", "prog");
  auto* start = app.add_subcommand("start", "start");
  start->prefix_command();
  set_usage_arguments(*start, "IMAGE [COMMAND...]");
  app.add_subcommand("stop", "stop");
  EXPECT_NE(help_of(app, "start").find("Usage: prog start [OPTIONS] IMAGE [COMMAND...]\n"),
            std::string::npos)
      << help_of(app, "start");
  CLI::App app2("usage", "prog");
  app2.add_subcommand("start")->prefix_command();
  app2.add_subcommand("stop", "stop");
  set_usage_arguments(*app2.get_subcommand("start"), "IMAGE [COMMAND...]");
  EXPECT_EQ(help_of(app2, "stop").find("IMAGE"), std::string::npos) << help_of(app2, "stop");
  EXPECT_EQ(help_of(app2, "").find("IMAGE"), std::string::npos);
}

}  // namespace
}  // namespace deepops
