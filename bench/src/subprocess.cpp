#include "subprocess.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace deepops::bench {
namespace {

volatile sig_atomic_t g_stop = 0;

int memory_file(const char* name) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
  return fd;
}

std::string read_all(int fd) {
  std::string text;
  char buf[65536];
  for (off_t at = 0;;) {
    ssize_t n = pread(fd, buf, sizeof(buf), at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return text;
}

}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv) {
  out_ = memory_file("stdout");
  err_ = memory_file("stderr");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    setpgid(0, 0);  // its own group: a timeout kills srun and whatever it started
    dup2(out_, STDOUT_FILENO);
    dup2(err_, STDERR_FILENO);
    execvp(args[0], args.data());
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
}

Subprocess::Subprocess(Subprocess&& o) noexcept : pid_(o.pid_), out_(o.out_), err_(o.err_) {
  o.pid_ = o.out_ = o.err_ = -1;
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (out_ >= 0) close(out_);
  if (err_ >= 0) close(err_);
}

int Subprocess::wait(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (done < 0 && errno != EINTR) throw std::runtime_error("waitpid failed");
    if (g_stop || std::chrono::steady_clock::now() > deadline) {
      kill(-pid_, SIGTERM);  // srun passes it on to the tasks
      std::this_thread::sleep_for(std::chrono::seconds(2));
      kill(-pid_, SIGKILL);
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
      return g_stop ? 130 : 124;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Subprocess::stop_all() { g_stop = 1; }

std::string Subprocess::out() const { return read_all(out_); }
std::string Subprocess::err() const { return read_all(err_); }

std::string run_and_read(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  Subprocess p(argv);
  const int rc = p.wait(std::chrono::steady_clock::now() + timeout);
  if (rc != 0) {
    std::string command;
    for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
    std::string err = p.err();
    while (!err.empty() && err.back() == '\n') err.pop_back();
    throw std::runtime_error(command + " failed (exit " + std::to_string(rc) + ")" +
                             (err.empty() ? "" : ": " + err));
  }
  return p.out();
}

}  // namespace deepops::bench
