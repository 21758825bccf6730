// deepops-enroot's command line: Enroot's commands, options and exit statuses.
#include "enroot/enroot_app.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace deepops::enroot {
namespace {

struct Parsed {
  int status;
  std::string out, err;
};

Parsed parse(EnrootCli& cli, std::vector<const char*> words) {
  words.insert(words.begin(), "deepops-enroot");
  std::ostringstream out, err;
  const int status =
      parse_enroot_command_line(cli, static_cast<int>(words.size()), words.data(), out, err);
  return {status, out.str(), err.str()};
}

TEST(EnrootCli, StartStopsAtTheFirstWordThatIsNotAnOption) {
  EnrootCli cli("test");
  auto p = parse(cli, {"start", "-r", "-w", "-e", "A=1", "-m", "/d:/d", "box", "ls", "-l", "-r"});
  ASSERT_EQ(p.status, -1) << p.err;
  EXPECT_TRUE(cli.args.root);
  EXPECT_TRUE(cli.args.rw);
  EXPECT_EQ(cli.args.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(cli.args.mounts, std::vector<std::string>{"/d:/d"});
  EXPECT_EQ(cli.rest(), (std::vector<std::string>{"box", "ls", "-l", "-r"}));
}

TEST(EnrootCli, LongOptionsTakeEqualsAsEnrootsDo) {
  EnrootCli cli("test");
  auto p =
      parse(cli, {"start", "--conf=c.sh", "--env=X", "--mount=/a:/b", "--rc=r.sh", "img.sqsh"});
  ASSERT_EQ(p.status, -1) << p.err;
  EXPECT_EQ(cli.args.conf, "c.sh");
  EXPECT_EQ(cli.args.rc, "r.sh");
  EXPECT_EQ(cli.rest(), std::vector<std::string>{"img.sqsh"});
}

TEST(EnrootCli, ExecTakesAPidAndACommand) {
  EnrootCli cli("test");
  ASSERT_EQ(parse(cli, {"exec", "-e", "A", "1234", "sh", "-c", "id"}).status, -1);
  EXPECT_EQ(cli.rest(), (std::vector<std::string>{"1234", "sh", "-c", "id"}));
}

TEST(EnrootCli, ImportCreateExportRemoveListOptions) {
  {
    EnrootCli cli("test");
    ASSERT_EQ(parse(cli, {"import", "-a", "aarch64", "-o", "x.sqsh", "docker://u"}).status, -1);
    EXPECT_EQ(cli.args.arch, "aarch64");
    EXPECT_EQ(cli.args.output, "x.sqsh");
    EXPECT_EQ(cli.args.uri, "docker://u");
  }
  {
    EnrootCli cli("test");
    ASSERT_EQ(parse(cli, {"create", "-f", "-n", "box", "x.sqsh"}).status, -1);
    EXPECT_TRUE(cli.args.force);
    EXPECT_EQ(cli.args.name, "box");
  }
  {
    EnrootCli cli("test");
    ASSERT_EQ(parse(cli, {"remove", "-f", "a", "b"}).status, -1);
    EXPECT_EQ(cli.args.names, (std::vector<std::string>{"a", "b"}));
  }
  {
    EnrootCli cli("test");
    ASSERT_EQ(parse(cli, {"list", "--fancy"}).status, -1);
    EXPECT_TRUE(cli.args.fancy);
  }
}

TEST(EnrootCli, UsageErrorsExitOneAsEnrootsDo) {
  for (std::vector<const char*> words :
       {std::vector<const char*>{"import"}, {"create", "--bogus", "x"}, {"imprt", "x"}, {}}) {
    EnrootCli cli("test");
    EXPECT_EQ(parse(cli, words).status, kEnrootUsageError);
  }
  EnrootCli cli("test");
  auto p = parse(cli, {"strat", "x"});
  EXPECT_NE(p.err.find("did you mean 'start'?"), std::string::npos) << p.err;
}

TEST(EnrootCli, EveryCommandHasHelp) {
  for (const char* cmd : {"batch", "create", "digest", "exec", "export", "import", "list", "load",
                          "remove", "start", "info", "version"}) {
    EnrootCli cli("test");
    auto p = parse(cli, {cmd, "--help"});
    EXPECT_EQ(p.status, 0) << cmd;
    EXPECT_NE(p.out.find(cmd), std::string::npos) << p.out;
  }
}

}  // namespace
}  // namespace deepops::enroot
