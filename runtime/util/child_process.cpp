#include "util/child_process.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {
namespace {

// Reaps the child on every path out, so that no error leaves a zombie.
class ChildReaper {
 public:
  explicit ChildReaper(pid_t pid) : pid_(pid) {}
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;
  ~ChildReaper() {
    if (pid_ > 0) wait();
  }
  int wait() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  }

 private:
  pid_t pid_;
};

}  // namespace

CapturedRun run_capturing_stdout(const std::vector<std::string>& argv, size_t max_output) {
  if (argv.empty()) throw Error(Errc::internal, "run_capturing_stdout: no program");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("cannot make a pipe", errno);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw sys_error("cannot start " + argv[0], errno);
  if (pid == 0) {
    dup2(write_end.get(), STDOUT_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execvp(args[0], args.data());
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  ChildReaper child(pid);
  write_end.reset();
  CapturedRun run;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const size_t room = max_output - std::min(max_output, run.out.size());
    run.out.append(buf, std::min(room, static_cast<size_t>(n)));
    run.truncated = run.truncated || static_cast<size_t>(n) > room;
  }
  run.exit_status = child.wait();
  return run;
}

}  // namespace deepops
