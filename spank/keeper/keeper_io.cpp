#include "keeper_io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "keeper_protocol.hpp"
#include "util/unique_fd.hpp"

namespace deepops::spank {
namespace {

using nlohmann::json;

int wait_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

Errc errc_named(const std::string& name) {
  for (Errc c : {Errc::invalid_argument, Errc::not_found, Errc::permission_denied, Errc::auth,
                 Errc::network, Errc::corrupt, Errc::no_space, Errc::busy}) {
    if (name == to_string(c)) return c;
  }
  return Errc::internal;
}

}  // namespace

std::string read_bounded(int fd, size_t limit, const std::string& what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sys_error("cannot read " + what, errno);
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > limit) {
      throw Error(Errc::invalid_argument,
                  what + " is larger than " + std::to_string(limit >> 20) + " MiB");
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

void write_line(int fd, const std::string& text) {
  const std::string line = text + "\n";
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the plugin has gone: nobody to tell
    done += static_cast<size_t>(n);
  }
}

json error_json(const Error& e) {
  return {{"ok", false}, {"error", e.describe()}, {"code", to_string(e.code())}};
}

std::string run_in_child(const std::function<std::string()>& body,
                         const std::function<void(pid_t)>& before_reap) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("pipe", errno);
  UniqueFd r(fds[0]), w(fds[1]);
  // SIGTERM is blocked around the fork, so that none reaches the keeper's
  // handler in the child: the child dies of it (default action), and the
  // keeper, which passes it on to its group, gets it as soon as it forked.
  sigset_t term, old_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, &old_mask);
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &term, nullptr);
  }
  if (pid != 0) sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  if (pid < 0) throw sys_error("fork", errno);
  if (pid == 0) {
    r.reset();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    json out;
    try {
      out = {{"ok", true}, {"value", body()}};
    } catch (const Error& e) {
      out = error_json(e);
    } catch (const std::exception& e) {
      out = error_json(Error(Errc::internal, e.what()));
    }
    write_line(w.get(), dump_text(out));
    _exit(out["ok"].get<bool>() ? 0 : 1);
  }
  w.reset();
  // Our own child's answer: an image config and a few names.
  std::string text;
  try {
    text = read_bounded(r.get(), 64u << 20, "a helper process's answer");
  } catch (const Error&) {
    kill(pid, SIGKILL);
  }
  if (before_reap) {
    siginfo_t info{};
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    before_reap(pid);
  }
  int status = wait_child(pid);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(Errc::internal, "a helper process died (" + describe_status(status) + ")");
  }
  if (!j.value("ok", false)) {
    throw Error(errc_named(j.value("code", "")), j.value("error", "unknown error"));
  }
  return j.value("value", "");
}

}  // namespace deepops::spank
