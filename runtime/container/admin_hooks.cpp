#include "container/admin_hooks.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

constexpr size_t kKeptOutput = 2000;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct HookRun {
  int status = 0;
  bool timed_out = false;
  std::string output;  // the last kKeptOutput bytes of stdout+stderr
};

[[noreturn]] void exec_hook(const fs::path& hook, int out_fd, std::vector<std::string>& env) {
  dup2(out_fd, STDOUT_FILENO);
  dup2(out_fd, STDERR_FILENO);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  // Stdio only: a hook, and what it leaves running, holds none of the
  // keeper's descriptors (its report pipe above all).
  syscall(SYS_close_range, 3U, ~0U, 0U);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string path = hook.string();
  char* argv[] = {path.data(), nullptr};
  execve(path.c_str(), argv, envp.data());
  dprintf(STDERR_FILENO, "cannot execute: %s\n", std::strerror(errno));
  _exit(126);
}

// One read of the hook's output into run.output (its last kKeptOutput
// bytes); false at the pipe's end.
bool take_output(int fd, HookRun& run) {
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n <= 0) return n < 0 && errno == EINTR;
  run.output.append(buf, static_cast<size_t>(n));
  if (run.output.size() > kKeptOutput) run.output.erase(0, run.output.size() - kKeptOutput);
  return true;
}

// Whether `pid` has exited, without reaping it.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

// The hook's output is read until the hook exits, not until its pipe
// closes: what it started in the background may hold the pipe for ever.
HookRun run_one(const fs::path& hook, std::vector<std::string>& env, int timeout_s) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("pipe", errno);
  UniqueFd rd(fds[0]), wr(fds[1]);
  pid_t pid = fork();
  if (pid < 0) throw sys_error("cannot run hook " + hook.string(), errno);
  if (pid == 0) exec_hook(hook, wr.get(), env);
  wr.reset();
  // Its exit wakes the poll where the kernel has pidfds (5.3); else a tick.
  UniqueFd exited(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  constexpr int kTickMs = 20;
  HookRun run;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  bool open_pipe = true;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd p[2] = {{open_pipe ? rd.get() : -1, POLLIN, 0}, {exited.get(), POLLIN, 0}};
    int wait_ms = static_cast<int>(left.count());
    if (!exited) wait_ms = std::min(wait_ms, kTickMs);
    if (poll(p, 2, wait_ms) < 0 && errno != EINTR) break;
    if (p[0].revents && !take_output(rd.get(), run)) open_pipe = false;
    if (has_exited(pid)) {
      // What it wrote last, if its pipe holds it still: at most a few reads.
      for (int i = 0; i < 16 && open_pipe; ++i) {
        pollfd now{rd.get(), POLLIN, 0};
        open_pipe = poll(&now, 1, 0) > 0 && take_output(rd.get(), run);
      }
      break;
    }
  }
  while (waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {
  }
  return run;
}

std::string describe_status(const HookRun& r, int timeout_s) {
  if (r.timed_out) return "ran longer than " + std::to_string(timeout_s) + " s and was killed";
  if (WIFEXITED(r.status)) return "exited with status " + std::to_string(WEXITSTATUS(r.status));
  return "was killed by signal " + std::to_string(WTERMSIG(r.status));
}

}  // namespace

AdminHookOutput run_admin_hooks(const std::vector<fs::path>& hooks, const fs::path& rootfs,
                                const fs::path& scratch,
                                const std::map<std::string, std::string>& host_env, int timeout_s) {
  AdminHookOutput out;
  if (hooks.empty()) return out;
  const fs::path mounts = scratch / "hook-mounts", environ_file = scratch / "hook-environ";
  std::ofstream(mounts).close();
  std::ofstream(environ_file).close();
  auto env_map = host_env;
  for (const char* prefix : {"ENROOT_", "DEEPOPS_"}) {
    const std::string p = prefix;
    env_map[p + "PID"] = std::to_string(getpid());
    env_map[p + "ROOTFS"] = rootfs.string();
    env_map[p + "MOUNTS"] = mounts.string();
    env_map[p + "ENVIRON"] = environ_file.string();
  }
  std::vector<std::string> env;
  for (const auto& [k, v] : env_map) env.push_back(k + "=" + v);

  for (const auto& hook : hooks) {
    HookRun r = run_one(hook, env, timeout_s);
    if (r.timed_out || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
      std::string tail = r.output.empty() ? "(no output)" : r.output;
      while (!tail.empty() && tail.back() == '\n') tail.pop_back();
      throw Error(
          Errc::internal,
          "hook " + hook.string() + " " + describe_status(r, timeout_s) + "; its output:\n" + tail,
          "the hook is the site's (hooks.d): show this to your cluster admins");
    }
  }
  const EnvLookup lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = host_env.find(k);
    if (it == host_env.end()) return std::nullopt;
    return it->second;
  };
  out.mounts = parse_mounts_text(read_all(mounts), lookup, "hook mounts (ENROOT_MOUNTS)");
  out.environ = parse_environ_text(read_all(environ_file), lookup, "hook environ (ENROOT_ENVIRON)");
  return out;
}

}  // namespace deepops
