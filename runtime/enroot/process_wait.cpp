#include "enroot/process_wait.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops::enroot {
namespace {

// Whether the process behind `pidfd` exited within `timeout_ms`.
bool exits_within(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  for (;;) {
    const int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

}  // namespace

void stop_process(pid_t pid, const std::string& what) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    if (errno == ESRCH) return;  // already gone
    throw sys_error("cannot watch the keeper of " + what, errno);
  }
  if (syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0) != 0) {
    if (errno == ESRCH) return;
    throw sys_error("cannot stop " + what, errno);
  }
  if (exits_within(pidfd.get(), 10'000)) return;
  syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  if (exits_within(pidfd.get(), 5'000)) return;
  throw Error(Errc::busy, what + " did not stop (pid " + std::to_string(pid) + ")",
              "try again, or ask an admin to kill it");
}

}  // namespace deepops::enroot
