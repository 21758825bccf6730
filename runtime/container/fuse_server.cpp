#include "container/fuse_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "util/error.hpp"

namespace deepops {

UniqueFd mount_fuse(const std::filesystem::path& target, const char* fstype, unsigned long flags) {
  UniqueFd fuse(open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!fuse) {
    int err = errno;
    throw sys_error("cannot open /dev/fuse", err,
                    err == ENOENT ? "load the fuse module: modprobe fuse"
                                  : "/dev/fuse must be usable by users (mode 0666); "
                                    "`deepops-ctr check` explains");
  }
  // The mount's owner is the caller as its own namespace maps it (root
  // there, or the user's own ids): FUSE admits only that owner's requests.
  std::string opts = "fd=" + std::to_string(fuse.get()) +
                     ",rootmode=40000,user_id=" + std::to_string(getuid()) +
                     ",group_id=" + std::to_string(getgid()) + ",default_permissions";
  if (mount(fstype, target.c_str(), fstype, flags, opts.c_str()) != 0) {
    throw sys_error(std::string("cannot mount ") + fstype + " on " + target.string(), errno,
                    "`deepops-ctr check` tests FUSE in a user namespace");
  }
  return fuse;
}

void become_server_child(pid_t keeper) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != keeper) _exit(0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  setpgid(0, 0);
  for (int sig : {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE}) {
    signal(sig, SIG_IGN);
  }
}

void stop_server(pid_t server) {
  if (server <= 0) return;
  kill(server, SIGKILL);
  while (waitpid(server, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace deepops
