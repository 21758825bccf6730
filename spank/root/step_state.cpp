#include "step_state.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

extern "C" {
#include <slurm/slurm.h>
}

namespace deepops::spank {

StepState step_state_from_exit(int wait_status) {
  if (!WIFEXITED(wait_status)) return StepState::unknown;
  switch (WEXITSTATUS(wait_status)) {
    case 0:
      return StepState::running;
    case 3:
      return StepState::ended;
    default:
      return StepState::unknown;
  }
}

StepState ask_step_state(const std::string& helper, const std::string& slurm_conf_path,
                         const UserIdentity& who, uint32_t job_id, uint32_t step_id,
                         std::chrono::milliseconds timeout) {
  // The helper drops to the user itself, first thing (--uid/--gid/--groups):
  // posix_spawn cannot, and fork() cannot be used here, since a fork runs
  // libslurm's atfork handlers in slurmstepd's child.
  std::string groups;
  for (gid_t g : who.groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
  std::vector<std::string> args = {
      helper,
      "--uid=" + std::to_string(who.uid),
      "--gid=" + std::to_string(who.gid),
      "--groups=" + groups,
      std::to_string(job_id),
      step_id == SLURM_BATCH_SCRIPT ? std::string("batch") : std::to_string(step_id)};
  std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
  if (!slurm_conf_path.empty()) env.push_back("SLURM_CONF=" + slurm_conf_path);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  for (auto& e : env) envp.push_back(e.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  // stdio on /dev/null, every other descriptor closed, no signal blocked
  // (user_init runs with many blocked), no atfork handler run.
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  for (int fd : {0, 1, 2}) posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, helper.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return StepState::unknown;

  // Bounded: a slurmctld that does not answer must not hold the start.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return step_state_from_exit(status);
    if (done < 0 && errno != EINTR) return StepState::unknown;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return StepState::unknown;
}

}  // namespace deepops::spank
