#include "local_ranks.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>

namespace deepops::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void exec_rank(const LocalRank& rank, char** argv, pid_t parent,
                            const sigset_t& mask) {
  // Dies with the parent, even if it died before this line.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(2);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  for (const auto& [name, value] : rank.env) setenv(name.c_str(), value.c_str(), 1);
  if (rank.keep_fd >= 0) fcntl(rank.keep_fd, F_SETFD, 0);
  execv("/proc/self/exe", argv);
  _exit(2);
}

// The ranks still running, and how the run is ending.
class Supervisor {
 public:
  explicit Supervisor(std::chrono::seconds grace) : grace_(grace) {}

  void started(pid_t pid, int rank) { running_[pid] = rank; }
  bool done() const { return running_.empty(); }

  // SIGTERM to every rank once; SIGKILL once the grace has passed.
  void stop() {
    if (stopping_) return;
    stopping_ = true;
    for (const auto& [pid, rank] : running_) kill(pid, SIGTERM);
    kill_at_ = Clock::now() + grace_;
  }
  void signalled(int sig) {
    if (!stop_signal_) stop_signal_ = sig;
    if (!stopping_) {
      std::fprintf(stderr, "deepops-bench: signal %d (%s): stopping the %zu ranks\n", sig,
                   strsignal(sig), running_.size());
    }
    stop();
  }
  void failed_to_start(size_t rank, int err) {
    std::fprintf(stderr, "deepops-bench: cannot start rank %zu: %s\n", rank, std::strerror(err));
    worst_ = std::max(worst_, 2);
    stop();
  }
  void reap() {
    int status = 0;
    pid_t pid = 0;
    while ((pid = waitpid(-1, &status, WNOHANG)) != 0) {
      if (pid < 0) {
        if (errno == EINTR) continue;
        running_.clear();  // ECHILD: none left, whatever reaped them
        return;
      }
      const auto it = running_.find(pid);
      if (it == running_.end()) continue;
      const int rank = it->second;
      running_.erase(it);
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 2;
      worst_ = std::max(worst_, code);
      // An error or a crash: the others would wait on it forever.
      if (code >= 2 && !stopping_) {
        std::fprintf(stderr, "deepops-bench: rank %d %s: stopping the other %zu ranks\n", rank,
                     WIFSIGNALED(status) ? ("died of signal " + std::to_string(WTERMSIG(status)) +
                                            " (" + strsignal(WTERMSIG(status)) + ")")
                                               .c_str()
                                         : ("failed (exit " + std::to_string(code) + ")").c_str(),
                     running_.size());
        stop();
      }
    }
  }
  // The next signal; once the grace has passed, SIGKILL to what is left.
  int next_signal(const sigset_t& watched) {
    if (!kill_at_) return sigwaitinfo(&watched, nullptr);
    const auto left = std::max(Clock::duration::zero(), *kill_at_ - Clock::now());
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    const timespec wait{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    const int sig = sigtimedwait(&watched, nullptr, &wait);
    if (sig < 0 && errno == EAGAIN) {
      for (const auto& [pid, rank] : running_) kill(pid, SIGKILL);
      kill_at_.reset();  // SIGCHLD reaps them
    }
    return sig;
  }
  int status() const { return stop_signal_ ? 128 + stop_signal_ : worst_; }

 private:
  std::chrono::seconds grace_;
  std::map<pid_t, int> running_;  // pid: rank
  bool stopping_ = false;
  std::optional<Clock::time_point> kill_at_;
  int worst_ = 0;
  int stop_signal_ = 0;
};

}  // namespace

int run_local_ranks(const std::vector<LocalRank>& ranks, char** argv, std::chrono::seconds grace,
                    const std::function<void()>& started) {
  sigset_t watched, old;
  sigemptyset(&watched);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&watched, sig);
  sigprocmask(SIG_BLOCK, &watched, &old);
  // A launcher may have left SIGCHLD ignored (it survives exec): the kernel
  // would then reap the ranks itself and say nothing.
  struct sigaction default_child {
  }, old_child{};
  default_child.sa_handler = SIG_DFL;
  sigemptyset(&default_child.sa_mask);
  sigaction(SIGCHLD, &default_child, &old_child);
  const pid_t parent = getpid();
  Supervisor ranks_running(grace);
  for (size_t r = 0; r < ranks.size(); ++r) {
    const pid_t pid = fork();
    if (pid == 0) exec_rank(ranks[r], argv, parent, old);
    if (pid < 0) {
      ranks_running.failed_to_start(r, errno);
      break;
    }
    ranks_running.started(pid, static_cast<int>(r));
  }
  if (started) started();
  while (!ranks_running.done()) {
    const int sig = ranks_running.next_signal(watched);
    if (sig == SIGCHLD) {
      ranks_running.reap();
    } else if (sig > 0) {
      ranks_running.signalled(sig);
    }
  }
  sigaction(SIGCHLD, &old_child, nullptr);
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return ranks_running.status();
}

}  // namespace deepops::bench
