#include "spawn_keeper.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace deepops::spank {
namespace {

// Everything the child needs, prepared by the parent: the child only reads it.
struct ChildPlan {
  const char* program;
  char* const* argv;
  char* const* envp;
  uid_t uid;
  gid_t gid;
  const gid_t* groups;
  size_t group_count;
  const char* runtime_path;      // nullptr: none to make
  const char* runtime_dir;       // runtime_path/UID
  int devnull, request, report;  // all above 4, close-on-exec
  // What the child reports if it cannot exec (it shares our memory).
  const char* failed_step = nullptr;
  int failed_errno = 0;
};

// The child's few steps, as raw system calls (syscall(2), which takes no
// lock): glibc's setresuid and setgroups would stop every thread of the
// process to change theirs too, a sanitizer's interceptors keep per-thread
// state, and this child shares slurmstepd's memory (and its threads' locks).
// The *at forms are the ones every architecture has (arm64 has no open,
// mkdir or dup2).
long sys(long number, long a = 0, long b = 0, long c = 0, long d = 0) {
  return syscall(number, a, b, c, d);
}

[[noreturn]] void fail(ChildPlan& plan, const char* step) {
  plan.failed_step = step;
  plan.failed_errno = errno;
  sys(SYS_exit_group, 127);
  __builtin_unreachable();
}

long as_long(const void* p) { return reinterpret_cast<long>(p); }

bool make_runtime_dir(const ChildPlan& plan) {
  if (sys(SYS_mkdirat, AT_FDCWD, as_long(plan.runtime_path), 0755) != 0 && errno != EEXIST) {
    return false;
  }
  if (sys(SYS_mkdirat, AT_FDCWD, as_long(plan.runtime_dir), 0700) != 0 && errno != EEXIST) {
    return false;
  }
  // Through a descriptor that refuses symlinks: runtime_path may be a shared
  // folder where someone else put a link by that name.
  const long fd = sys(SYS_openat, AT_FDCWD, as_long(plan.runtime_dir),
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = sys(SYS_fchown, fd, plan.uid, plan.gid) == 0 && sys(SYS_fchmod, fd, 0700) == 0;
  sys(SYS_close, fd);
  return ok;
}

// The kernel's struct sigaction (not glibc's): a handler, flags, a restorer
// and the mask.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  unsigned long mask;
};

int child_main(void* arg) {
  ChildPlan& plan = *static_cast<ChildPlan*>(arg);
  // Default dispositions: exec resets handled signals, not ignored ones.
  const KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      sys(SYS_rt_sigaction, sig, as_long(&dfl), 0, sizeof(dfl.mask));
    }
  }
  if (sys(SYS_setpgid, 0, 0) != 0) fail(plan, "setpgid");
  // slurmstepd's real uid is root; in user_init and task_exit its effective
  // one is the job's: root again, to make the folder and set the groups.
  if (sys(SYS_setresuid, -1, 0, -1) != 0 || sys(SYS_setresgid, -1, 0, -1) != 0) {
    fail(plan, "regaining root");
  }
  if (plan.runtime_path && !make_runtime_dir(plan)) fail(plan, "runtime_path");
  const int moves[][2] = {{plan.devnull, 0},
                          {plan.devnull, 1},
                          {plan.devnull, 2},
                          {plan.request, kRequestFd},
                          {plan.report, kReportFd}};
  for (const auto& [from, to] : moves) {
    if (sys(SYS_dup3, from, to, 0) < 0) fail(plan, "dup3");
  }
  if (sys(SYS_close_range, kReportFd + 1, ~0U, 0) != 0) {
    // Kernels before 5.9: every descriptor up to the limit, one by one.
    struct {
      unsigned long long cur, max;
    } limit{};
    if (errno != ENOSYS || sys(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, as_long(&limit)) != 0) {
      fail(plan, "close_range");
    }
    constexpr unsigned long long kAtMost = 1u << 20;  // slurmstepd's are far below
    for (unsigned long long fd = kReportFd + 1; fd < limit.cur && fd < kAtMost; ++fd) {
      sys(SYS_close, static_cast<long>(fd));
    }
  }
  if (sys(SYS_setgroups, static_cast<long>(plan.group_count), as_long(plan.groups)) != 0) {
    fail(plan, "setgroups");
  }
  if (sys(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) fail(plan, "setresgid");
  if (sys(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) fail(plan, "setresuid");
  const unsigned long none = 0;
  if (sys(SYS_rt_sigprocmask, SIG_SETMASK, as_long(&none), 0, sizeof(none)) != 0) {
    fail(plan, "sigprocmask");
  }
  sys(SYS_execve, as_long(plan.program), as_long(plan.argv), as_long(plan.envp));
  fail(plan, "exec");
}

// A descriptor moved above 4, close-on-exec, so that the child's dup2 onto
// 0..4 never overwrites one it still needs.
UniqueFd above_four(int fd) {
  UniqueFd out(fcntl(fd, F_DUPFD_CLOEXEC, kReportFd + 1));
  if (!out) throw sys_error("cannot start deepops-keeper: fcntl", errno);
  return out;
}

struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("cannot start deepops-keeper: pipe", errno);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

}  // namespace

KeeperProcess spawn_keeper(const std::string& program, const char* action, const UserIdentity& who,
                           const std::filesystem::path& runtime_path) {
  std::string prog = program, act = action;
  std::string path_var = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::vector<char*> argv = {prog.data(), act.data(), nullptr};
  std::vector<char*> envp = {path_var.data(), nullptr};
  const std::string runtime_str = runtime_path.string();
  const std::string runtime_dir = (runtime_path / std::to_string(who.uid)).string();

  Pipe request, report;
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) throw sys_error("cannot start deepops-keeper: /dev/null", errno);
  UniqueFd child_null = above_four(devnull.get());
  UniqueFd child_request = above_four(request.read.get());
  UniqueFd child_report = above_four(report.write.get());
  request.read.reset();
  report.write.reset();

  ChildPlan plan{prog.c_str(),
                 argv.data(),
                 envp.data(),
                 who.uid,
                 who.gid,
                 who.groups.data(),
                 who.groups.size(),
                 runtime_path.empty() ? nullptr : runtime_str.c_str(),
                 runtime_dir.c_str(),
                 child_null.get(),
                 child_request.get(),
                 child_report.get()};
  constexpr size_t kStack = 256 * 1024;
  void* stack =
      mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) throw sys_error("cannot start deepops-keeper: mmap", errno);
  // No handler of slurmstepd's may run in the child, on our shared memory.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = clone(child_main, static_cast<char*>(stack) + kStack,
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kStack);
  if (pid < 0) throw sys_error("cannot start deepops-keeper: clone", clone_errno);
  if (plan.failed_step) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    const std::string step = plan.failed_step;
    if (step == "runtime_path") {
      throw sys_error("cannot prepare " + runtime_dir + " for uid " + std::to_string(who.uid),
                      plan.failed_errno, "check runtime_path in plugstack.conf");
    }
    if (step == "exec") {
      throw sys_error("cannot run " + program, plan.failed_errno,
                      "is the deepops package installed whole on this node?");
    }
    throw sys_error("cannot start deepops-keeper as uid " + std::to_string(who.uid) + ": " + step,
                    plan.failed_errno);
  }
  // The writer must never block slurmstepd: write_document polls.
  fcntl(request.write.get(), F_SETFL, fcntl(request.write.get(), F_GETFL) | O_NONBLOCK);
  // Still our unreaped child: the pidfd names this process for good.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  return KeeperProcess{pid, std::move(pidfd), std::move(request.write), std::move(report.read)};
}

}  // namespace deepops::spank
