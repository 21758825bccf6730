// The node side of the SPANK plugin that needs no Slurm daemon: what the
// keeper tells the tasks, the PyTorch and PMIx variables, names.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "identity.hpp"
#include "keeper_protocol.hpp"
#include "spawn_keeper.hpp"
#include "step_record.hpp"
#include "step_start.hpp"
#include "step_state.hpp"
#include "task_env.hpp"
#include "util/error.hpp"

namespace deepops::spank {
namespace {
using namespace std::chrono_literals;

TEST(EnvDelta, SetsChangedAndNewUnsetsGone) {
  EnvMap before = {{"A", "1"}, {"B", "2"}, {"LANG", "C.UTF-8"}};
  EnvMap after = {{"A", "1"}, {"B", "3"}, {"PATH", "/usr/bin"}};
  EnvDelta d = env_delta(before, after);
  EXPECT_EQ(d.set, (EnvMap{{"B", "3"}, {"PATH", "/usr/bin"}}));
  EXPECT_EQ(d.unset, std::vector<std::string>{"LANG"});
  EnvDelta none = env_delta(before, before);
  EXPECT_TRUE(none.set.empty());
  EXPECT_TRUE(none.unset.empty());
}

TEST(KeeperReport, RoundTripsThroughJson) {
  KeeperReport r;
  r.ok = true;
  r.keeper = 4242;
  r.container = "nvcr.io/nvidia/pytorch:24.05-py3";
  r.notice = "imported";
  r.env.set = {{"X", "a b"}};
  r.env.unset = {"LANG"};
  r.workdir = "/workspace";
  r.workdir_required = true;
  r.remap_root = true;
  r.pytorch = true;
  r.image = {{"env", {"PYTORCH_VERSION=2.3"}}};
  r.save_to = "/out/x.sqsh";
  r.layer_dir = "/data/.save/1.0.n1";
  r.layer_is_temporary = true;
  KeeperReport back = KeeperReport::from_json(r.to_json());
  EXPECT_TRUE(back.ok);
  EXPECT_EQ(back.keeper, 4242);
  EXPECT_EQ(back.container, r.container);
  EXPECT_EQ(back.env.set, r.env.set);
  EXPECT_EQ(back.env.unset, r.env.unset);
  EXPECT_EQ(back.workdir, "/workspace");
  EXPECT_TRUE(back.workdir_required && back.remap_root && back.layer_is_temporary);
  EXPECT_TRUE(back.pytorch);
  EXPECT_EQ(back.image, r.image);
  EXPECT_EQ(back.save_to, "/out/x.sqsh");
}

TEST(KeeperReport, GarbageOrSilenceIsAnError) {
  EXPECT_FALSE(KeeperReport::from_json("").ok);
  EXPECT_NE(KeeperReport::from_json("").error.find("no report"), std::string::npos);
  EXPECT_FALSE(KeeperReport::from_json("{\"ok\": tr").ok);
  KeeperReport failed = KeeperReport::from_json(R"({"ok": false, "error": "no such image"})");
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.error, "no such image");
}

// The keeper writes its report as the job's user, who can make it write
// anything: wrong shapes are errors of the step, never exceptions.
TEST(KeeperReport, WrongTypesAreAnErrorNotAnException) {
  for (const char* text : {R"({"ok": "yes"})", R"({"ok": true, "keeper": "1"})",
                           R"({"ok": true, "keeper": 7666666666666666666666666666666666})",
                           R"({"ok": true, "keeper": -1})", R"({"ok": true, "set": [1, 2]})",
                           R"({"ok": true, "image": 5})", R"({"ok": true, "workdir": {}})"}) {
    KeeperReport r;
    EXPECT_NO_THROW(r = KeeperReport::from_json(text)) << text;
    EXPECT_FALSE(r.ok) << text;
    EXPECT_NE(r.error.find("malformed"), std::string::npos) << text << ": " << r.error;
  }
}

TEST(PytorchEnv, OnlyForPytorchImages) {
  EnvMap task = {{"SLURM_PROCID", "3"},
                 {"SLURM_LOCALID", "1"},
                 {"SLURM_STEP_NUM_TASKS", "8"},
                 {"SLURM_STEP_NODELIST", "gpu[07-08]"},
                 {"SLURM_JOB_ID", "123456"}};
  EXPECT_TRUE(pytorch_env(task, false).empty());
  EnvMap e = pytorch_env(task, true);
  EXPECT_EQ(e["RANK"], "3");
  EXPECT_EQ(e["LOCAL_RANK"], "1");
  EXPECT_EQ(e["WORLD_SIZE"], "8");
  EXPECT_EQ(e["MASTER_ADDR"], "gpu07");
  EXPECT_EQ(e["MASTER_PORT"], std::to_string(20000 + 123456 % 10000));
}

TEST(Hostlist, NthAndFirstHost) {
  EXPECT_EQ(first_host("n[3-5],m1"), "n3");
  EXPECT_EQ(nth_host("n[3-5],m1", 2), "n5");
  EXPECT_EQ(nth_host("n[3-5],m1", 3), "m1");
  EXPECT_EQ(nth_host("n[3-5],m1", 4), "");
  EXPECT_EQ(nth_host("", 0), "");
}

TEST(ContainerNames, JobScopePrefixesTheJob) {
  EXPECT_EQ(stored_container_name("dev", false, "77"), "dev");
  EXPECT_EQ(stored_container_name("dev", true, "77"), "job77.dev");
  EXPECT_TRUE(stored_container_name("dev", true, "77").starts_with(job_scope_prefix("77")));
}

TEST(PmixHookEnv, OnlyForPmixSteps) {
  StepInfo step;
  step.job_id = "12";
  step.step_id = "3";
  step.slurmd_spool_dir = "/var/spool/slurmd";
  EXPECT_TRUE(pmix_hook_env(step).empty());
  step.job_env["SLURM_MPI_TYPE"] = "pmi2";
  EXPECT_TRUE(pmix_hook_env(step).empty());
  step.job_env["SLURM_MPI_TYPE"] = "pmix_v4";
  EnvMap e = pmix_hook_env(step);
  EXPECT_EQ(e["PMIX_SERVER_TMPDIR"], "/var/spool/slurmd/pmix.12.3/");
  EXPECT_EQ(e["PMIX_NAMESPACE"], "slurm.pmix.12.3");
}

}  // namespace
}  // namespace deepops::spank

namespace deepops::spank {
namespace {

// The pipe read without a cancel check or deadline: the report's text, or "".
std::string read_until_report(int fd, const ProgressSink& progress) {
  return read_keeper_pipe(fd, progress, {}, std::chrono::milliseconds(0)).report;
}

TEST(KeeperPipe, ProgressLinesThenTheReport) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string sent =
      "{\"progress\":\"importing x: 0/10 MB downloaded\"}\n"
      "{\"progress\":\"importing x: 10/10 MB downloaded\"}\n" +
      [] {
        KeeperReport r;
        r.ok = true;
        r.keeper = 7;
        return r.to_json();
      }();
  ASSERT_EQ(write(fds[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  close(fds[1]);
  std::vector<std::string> lines;
  std::string report = read_until_report(fds[0], [&](const std::string& l) { lines.push_back(l); });
  close(fds[0]);
  EXPECT_EQ(lines, (std::vector<std::string>{"importing x: 0/10 MB downloaded",
                                             "importing x: 10/10 MB downloaded"}));
  KeeperReport r = KeeperReport::from_json(report);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.keeper, 7);
}

TEST(KeeperPipe, AProgressLineThatIsNoTextIsSkipped) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string sent = "{\"progress\": 5}\n{\"progress\": \"ok\"}\n{\"ok\": false}\n";
  ASSERT_EQ(write(fds[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  close(fds[1]);
  std::vector<std::string> lines;
  std::string report;
  EXPECT_NO_THROW(report =
                      read_until_report(fds[0], [&](const std::string& l) { lines.push_back(l); }));
  close(fds[0]);
  EXPECT_EQ(lines, std::vector<std::string>{"ok"});
  EXPECT_EQ(report, "{\"ok\": false}");
}

TEST(KeeperPipe, NothingButEofIsNoReport) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[1]);
  EXPECT_FALSE(KeeperReport::from_json(read_until_report(fds[0], {})).ok);
  close(fds[0]);
}

// While the keeper starts, slurmstepd asks whether the job was cancelled, at
// most every `every`, reading progress lines meanwhile.
TEST(KeeperPipe, ACancelWhileWaitingEndsTheRead) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string sent = "{\"progress\":\"importing x: 1/10 MB downloaded\"}\n";
  ASSERT_EQ(write(fds[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  std::vector<std::string> lines;
  int asked = 0;
  auto started = std::chrono::steady_clock::now();
  auto out = read_keeper_pipe(
      fds[0], [&](const std::string& l) { lines.push_back(l); }, [&] { return ++asked == 3; },
      std::chrono::milliseconds(20));
  auto took = std::chrono::steady_clock::now() - started;
  close(fds[0]);
  close(fds[1]);  // the keeper's end, still open: the read ended on the cancel
  EXPECT_EQ(out.how, ReadOutcome::Ended::cancelled);
  EXPECT_EQ(asked, 3);
  EXPECT_GE(took, std::chrono::milliseconds(60));  // not more often than every 20 ms
  EXPECT_EQ(lines, std::vector<std::string>{"importing x: 1/10 MB downloaded"});
}

TEST(KeeperPipe, AReportBeforeTheFirstCheckAsksNothing) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string sent = "{\"progress\":\"p\"}\n{\"ok\": false}";
  ASSERT_EQ(write(fds[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  close(fds[1]);
  int asked = 0;
  auto out = read_keeper_pipe(
      fds[0], {}, [&] { return ++asked > 0; }, std::chrono::seconds(30));
  close(fds[0]);
  EXPECT_EQ(out.how, ReadOutcome::Ended::report);
  EXPECT_EQ(out.report, "{\"ok\": false}");
  EXPECT_EQ(asked, 0);
}

TEST(KeeperPipe, NotCancelledReadsToTheReport) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int asked = 0;
  // The keeper's report comes after the second check.
  auto out = read_keeper_pipe(
      fds[0], {},
      [&] {
        if (++asked == 2) {
          const std::string sent = "{\"ok\": true}";
          EXPECT_EQ(write(fds[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
          close(fds[1]);
        }
        return false;
      },
      std::chrono::milliseconds(1));
  close(fds[0]);
  EXPECT_EQ(out.how, ReadOutcome::Ended::report);
  EXPECT_EQ(out.report, "{\"ok\": true}");
  EXPECT_GE(asked, 2);
}

// A process that the keeper's hooks left behind may hold the pipe open: the
// report's line ends the read, not the pipe's end.
TEST(KeeperPipe, TheReportLineEndsTheReadWithThePipeStillOpen) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string sent = "{\"progress\":\"p\"}\n{\"ok\": true}\n";
  ASSERT_EQ(write(fds[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  auto out = read_keeper_pipe(fds[0], {}, {}, std::chrono::milliseconds(0),
                              ReadLimits{1024, std::chrono::seconds(30)});
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(out.how, ReadOutcome::Ended::report);
  EXPECT_EQ(out.report, "{\"ok\": true}");
}

// Root reads what the user's process writes: a line past the limit ends the
// read at the limit, whatever follows.
TEST(KeeperPipe, ALineLongerThanTheLimitIsRefusedAtTheLimit) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  const std::string sent(60000, 'x');  // no newline, and the writer keeps it open
  ASSERT_EQ(write(fds[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  auto out = read_keeper_pipe(fds[0], {}, {}, std::chrono::milliseconds(0),
                              ReadLimits{4096, std::chrono::seconds(30)});
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(out.how, ReadOutcome::Ended::too_large);
  EXPECT_TRUE(out.report.empty());
}

TEST(KeeperPipe, AKeeperThatNeverAnswersMeetsTheDeadline) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  auto started = std::chrono::steady_clock::now();
  auto out = read_keeper_pipe(fds[0], {}, {}, std::chrono::milliseconds(0),
                              ReadLimits{4096, std::chrono::milliseconds(50)});
  auto took = std::chrono::steady_clock::now() - started;
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(out.how, ReadOutcome::Ended::deadline);
  EXPECT_GE(took, std::chrono::milliseconds(50));
}

// The request the plugin writes is the request the keeper reads.
TEST(StartRequest, RoundTripsThroughJson) {
  StartRequest r;
  r.request.image = "docker.io/library/ubuntu:24.04";
  MountEntry m;
  m.source = "/data";
  m.target = "/mnt/data";
  m.type = "none";
  m.bind = true;
  m.read_only = true;
  m.flags = 4;
  m.origin = "--container-mounts";
  r.request.mounts = {m};
  r.request.name = ContainerRequest::Name{"dev", ContainerRequest::NameMode::no_exec};
  r.request.remap_root = true;
  r.request.env_names = {"NCCL_DEBUG"};
  r.request.unshare_ipc = true;
  r.config.runtime_path = "/run/deepops";
  r.config.job_scope = true;
  r.config.start_timeout = std::chrono::seconds(90);
  r.step.uid = 1000;
  r.step.gid = 1000;
  r.step.who = UserIdentity{1000, 1000, {1000, 27}};
  r.step.job_id = "12";
  r.step.step_id = "batch";
  r.step.batch = true;
  r.step.job_env = {{"PWD", "/home/u"}};
  r.step.argv = {"/var/spool/slurmd/job00012/slurm_script"};
  StartRequest back = start_request_from_json(to_json(r));
  EXPECT_EQ(back.request.image, r.request.image);
  ASSERT_EQ(back.request.mounts.size(), 1u);
  EXPECT_EQ(back.request.mounts[0].target, "/mnt/data");
  EXPECT_TRUE(back.request.mounts[0].read_only);
  EXPECT_EQ(back.request.mounts[0].flags, 4u);
  ASSERT_TRUE(back.request.name.has_value());
  EXPECT_EQ(back.request.name->mode, ContainerRequest::NameMode::no_exec);
  EXPECT_EQ(back.request.remap_root, std::optional<bool>(true));
  EXPECT_FALSE(back.request.mount_home.has_value());
  EXPECT_TRUE(back.request.unshare_ipc);
  EXPECT_EQ(back.config.runtime_path, "/run/deepops");
  EXPECT_TRUE(back.config.job_scope);
  EXPECT_EQ(back.config.start_timeout, std::chrono::seconds(90));
  EXPECT_EQ(back.step.who.groups, (std::vector<gid_t>{1000, 27}));
  EXPECT_EQ(back.step.job_env, r.step.job_env);
  EXPECT_EQ(back.step.argv, r.step.argv);
  EXPECT_TRUE(back.step.batch);
  EXPECT_THROW(start_request_from_json("{\"request\": 1}"), Error);
  EXPECT_THROW(start_request_from_json("not json"), Error);
}

// A job's variable may hold any bytes: the request is still written (the bad
// bytes replaced), never an exception in slurmstepd.
TEST(StartRequest, AVariableThatIsNotUtf8IsNoException) {
  StartRequest r;
  r.step.job_env = {{"LATIN1", "caf\xe9"}, {"OK", "fine"}};
  std::string text;
  ASSERT_NO_THROW(text = to_json(r));
  StartRequest back = start_request_from_json(text);
  EXPECT_EQ(back.step.job_env["OK"], "fine");
  EXPECT_EQ(back.step.job_env["LATIN1"], "caf\xef\xbf\xbd");  // U+FFFD
}

}  // namespace
}  // namespace deepops::spank

namespace deepops::spank {
namespace {
using namespace std::chrono_literals;

// The cancel check's helper, stood in for by scripts: its exit status is the
// answer, and one that hangs or cannot run never says "ended".
class StepStateHelper : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("step-state-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string script(const std::string& name, const std::string& body) {
    const auto path = dir / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return path.string();
  }
  StepState ask(const std::string& helper, std::chrono::milliseconds timeout = 5s) {
    return ask_step_state(helper, "/etc/slurm-test.conf", current_identity(getuid(), getgid()), 42,
                          7, timeout);
  }
  std::filesystem::path dir;
};

TEST_F(StepStateHelper, ItsExitStatusIsTheAnswer) {
  EXPECT_EQ(ask(script("running", "exit 0")), StepState::running);
  EXPECT_EQ(ask(script("ended", "exit 3")), StepState::ended);
  EXPECT_EQ(ask(script("unknown", "exit 1")), StepState::unknown);
  EXPECT_EQ(ask(script("killed", "kill -9 $$")), StepState::unknown);
  EXPECT_EQ(ask((dir / "missing").string()), StepState::unknown);
}

TEST_F(StepStateHelper, GetsTheIdsAndSlurmConfAndNoOtherDescriptor) {
  // A descriptor of the caller's that is not close-on-exec, as slurmstepd
  // has some: the helper must not get it. Stdio is /dev/null.
  const int leaked = 57;
  ASSERT_EQ(dup2(STDERR_FILENO, leaked), leaked);
  const std::string body =
      "[ \"$1 $4 $5\" = \"--uid=$(id -u) 42 7\" ] || exit 1\n"
      "[ \"$SLURM_CONF\" = /etc/slurm-test.conf ] || exit 1\n"
      "[ -e /proc/$$/fd/57 ] && exit 1\n"
      "[ \"$(readlink /proc/$$/fd/1)\" = /dev/null ] || exit 1\n"
      "exit 0";
  EXPECT_EQ(ask(script("ids", body)), StepState::running);
  close(leaked);
}

TEST_F(StepStateHelper, OneThatHangsIsKilledAtTheTimeout) {
  const auto pid_file = dir / "pid";
  EXPECT_EQ(ask(script("hangs", "echo $$ > " + pid_file.string() + "; exec sleep 600"), 300ms),
            StepState::unknown);
  pid_t pid = 0;
  std::ifstream(pid_file) >> pid;
  ASSERT_GT(pid, 0);
  // Killed and reaped by the time the answer came: no such process left.
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace deepops::spank

// Unnamed steps' containers, found by JOBID.STEPID while their keeper runs.
namespace deepops::spank {
namespace {

TEST(StepRecord, OnlyJobIdDotStepIdNamesAStep) {
  EXPECT_TRUE(is_step_name("1234.0"));
  EXPECT_TRUE(is_step_name("7.12"));
  for (const char* name : {"1234", "1234.", ".0", "1234.batch", "a.0", "1.2.3", "12345678901.0"})
    EXPECT_FALSE(is_step_name(name)) << name;
}

TEST(StepRecord, ReadBackWhileTheKeeperRunsAndPrunedOnceItIsGone) {
  auto dir =
      std::filesystem::temp_directory_path() / ("step-record-test." + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  int fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  StepRecord live{getpid(), process_start_time(getpid()), true, {}};
  live.config.working_dir = "/work";
  ASSERT_NE(live.keeper_start, 0u);
  write_step_record(fd, step_record_name("10.0", "n1"), live);
  auto back = read_step_record(dir / step_record_name("10.0", "n1"));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->keeper, getpid());
  EXPECT_TRUE(back->remap_root);
  EXPECT_EQ(back->config.working_dir, "/work");

  // A reused pid (another start time) is not the keeper.
  StepRecord stale = live;
  stale.keeper_start += 1;
  write_step_record(fd, step_record_name("11.0", "n1"), stale);
  write_step_record(fd, step_record_name("11.0", "n2"), stale);  // another node's
  EXPECT_FALSE(read_step_record(dir / step_record_name("11.0", "n1")));
  prune_step_records(dir, "n1");
  EXPECT_TRUE(std::filesystem::exists(dir / step_record_name("10.0", "n1")));
  EXPECT_FALSE(std::filesystem::exists(dir / step_record_name("11.0", "n1")));
  EXPECT_TRUE(std::filesystem::exists(dir / step_record_name("11.0", "n2")));

  // What the user may have written there is parsed without trust.
  std::ofstream(dir / step_record_name("12.0", "n1")) << R"({"keeper": -1, "keeper_start": 1})";
  EXPECT_FALSE(read_step_record(dir / step_record_name("12.0", "n1")));
  std::ofstream(dir / step_record_name("13.0", "n1")) << "not json";
  EXPECT_FALSE(read_step_record(dir / step_record_name("13.0", "n1")));
  remove_step_record(fd, step_record_name("10.0", "n1"));
  EXPECT_FALSE(std::filesystem::exists(dir / step_record_name("10.0", "n1")));
  close(fd);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace deepops::spank

namespace deepops::spank {
namespace {

// The plugin's privileged code: what the keeper gets from root. Needs root
// (as the plugin has in slurmstepd); CI runs as root.
class SpawnKeeper : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root, as slurmstepd";
    dir = std::filesystem::temp_directory_path() / ("spawn-keeper-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(
        dir, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                 std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                 std::filesystem::perms::others_exec);
  }
  void TearDown() override {
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  std::string script(const std::string& body) {
    const auto path = dir / "keeper";
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    chmod(path.c_str(), 0755);
    return path.string();
  }
  std::filesystem::path dir;
};

TEST_F(SpawnKeeper, TheUserGetsTheRequestTheReportPipeAndNothingElse) {
  // A descriptor of slurmstepd's that is not close-on-exec must not reach it.
  const int leaked = 57;
  ASSERT_EQ(dup2(STDERR_FILENO, leaked), leaked);
  // It answers, then stays (as sleep, with its descriptors) to be looked at.
  const std::string keeper = script(
      "req=$(cat <&3)\n"
      "printf '%s|%s|%s|%s|%s|%s|%s\\n' \"$1\" \"$(id -u) $(id -g)\" \"$(id -G)\" "
      "\"$req\" \"$(readlink /proc/$$/fd/1)\" \"$(env | grep -c .)$PATH\" "
      "\"$(grep SigBlk /proc/$$/status)\" >&4\n"
      "exec sleep 60");
  const UserIdentity nobody{65534, 65534, {65534, 100}};
  KeeperProcess k = spawn_keeper(keeper, "start", nobody, dir / "run");
  close(leaked);
  ASSERT_TRUE(write_document(k.request.get(), "{\"hello\": 1}", std::chrono::seconds(10)));
  k.request.reset();
  ReadOutcome out = read_keeper_pipe(k.report.get(), {}, {}, std::chrono::milliseconds(0),
                                     ReadLimits{4096, std::chrono::seconds(30)});
  // sleep has what the keeper was given, and nothing else.
  std::set<std::string> fds;
  for (int i = 0; i < 1000 && fds.size() != 5; ++i) {  // until sleep has replaced the shell
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    fds.clear();
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(k.pid) + "/fd", ec)) {
      fds.insert(e.path().filename().string());
    }
  }
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2", "3", "4"}));
  kill(k.pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(k.pid, &status, 0), k.pid);
  ASSERT_EQ(out.how, ReadOutcome::Ended::report);
  std::vector<std::string> f;
  std::stringstream in(out.report);
  for (std::string part; std::getline(in, part, '|');) f.push_back(part);
  ASSERT_EQ(f.size(), 7u) << out.report;
  EXPECT_EQ(f[0], "start");
  EXPECT_EQ(f[1], "65534 65534");
  EXPECT_EQ(f[2], "65534 100");
  EXPECT_EQ(f[3], "{\"hello\": 1}");
  EXPECT_EQ(f[4], "/dev/null");
  EXPECT_TRUE(f[5].ends_with("/usr/bin:/sbin:/bin")) << f[5];
  EXPECT_EQ(f[6], "SigBlk:\t0000000000000000");
  struct stat st {};
  ASSERT_EQ(stat((dir / "run" / "65534").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(SpawnKeeper, AMissingProgramIsAnErrorNamingIt) {
  try {
    spawn_keeper((dir / "missing").string(), "start", UserIdentity{65534, 65534, {65534}}, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.describe().find("cannot run " + (dir / "missing").string()), std::string::npos)
        << e.describe();
  }
}

}  // namespace
}  // namespace deepops::spank
