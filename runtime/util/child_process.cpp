#include "util/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>

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

std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("cannot make a pipe", errno);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

[[noreturn]] void exec_child(char* const* argv, char* const* envp, int out, int err) {
  dup2(out, STDOUT_FILENO);
  if (err >= 0) dup2(err, STDERR_FILENO);
  const int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  if (envp) {
    execvpe(argv[0], argv, envp);
  } else {
    execvp(argv[0], argv);
  }
  dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], std::strerror(errno));
  _exit(127);
}

// Appends what one read gives; false at the pipe's end.
bool read_some(int fd, std::string& into, size_t max, bool keep_last, bool& truncated) {
  char buf[8192];
  const ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  if (keep_last) {
    into.append(buf, static_cast<size_t>(n));
    if (into.size() > max) into.erase(0, into.size() - max);
  } else {
    const size_t room = max - std::min(max, into.size());
    into.append(buf, std::min(room, static_cast<size_t>(n)));
    truncated = truncated || static_cast<size_t>(n) > room;
  }
  return true;
}

}  // namespace

CapturedRun run_captured(const std::vector<std::string>& argv, const CaptureOptions& options) {
  if (argv.empty()) throw Error(Errc::internal, "run_captured: no program");
  auto [out_read, out_write] = make_pipe();
  UniqueFd err_read, err_write;
  if (options.capture_stderr) std::tie(err_read, err_write) = make_pipe();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (const auto& e : *options.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  const pid_t pid = fork();
  if (pid < 0) throw sys_error("cannot start " + argv[0], errno);
  if (pid == 0) {
    exec_child(args.data(), options.env ? envp.data() : nullptr, out_write.get(),
               err_write ? err_write.get() : -1);
  }
  ChildReaper child(pid);
  out_write.reset();
  err_write.reset();
  CapturedRun run;
  bool ignored = false;
  pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read ? err_read.get() : -1, POLLIN, 0}};
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw sys_error("cannot read the output of " + argv[0], errno);
    }
    if (fds[0].revents && !read_some(fds[0].fd, run.out, options.max_output, false, run.truncated))
      fds[0].fd = -1;
    if (fds[1].revents && !read_some(fds[1].fd, run.err, options.max_error, true, ignored))
      fds[1].fd = -1;
  }
  run.exit_status = child.wait();
  return run;
}

CapturedRun run_capturing_stdout(const std::vector<std::string>& argv, size_t max_output) {
  CaptureOptions options;
  options.max_output = max_output;
  return run_captured(argv, options);
}

}  // namespace deepops
