// The part of the runtime that runs in a Slurm task before its exec (the
// SPANK plugin's task_init): join the keeper, change directory, install the
// seccomp filter. It links nothing but libc: see keeper_join.hpp.
#include "container/keeper_join.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "container/id_call_filter.hpp"
#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {

// Joins the user and mount namespaces of a running keeper.
void join_keeper(pid_t keeper, const std::string& what) {
  const std::string proc = "/proc/" + std::to_string(keeper) + "/ns/";
  UniqueFd user(open((proc + "user").c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd mnt(open((proc + "mnt").c_str(), O_RDONLY | O_CLOEXEC));
  if (!user || !mnt) throw sys_error("cannot reach the keeper of " + what, errno, "is it running?");
  struct stat theirs {
  }, ours{};
  if (fstat(user.get(), &theirs) != 0 || stat("/proc/self/ns/user", &ours) != 0 ||
      theirs.st_ino == ours.st_ino) {
    throw Error(Errc::busy, what + " is still starting", "try again in a moment");
  }
  // The namespaces the keeper unshared (--unshare) are opened first: /proc
  // of the host is no longer ours once in its mount namespace.
  std::vector<std::pair<UniqueFd, int>> extra;
  for (auto [name, flag] : {std::pair{"net", CLONE_NEWNET}, std::pair{"ipc", CLONE_NEWIPC},
                            std::pair{"uts", CLONE_NEWUTS}}) {
    UniqueFd theirs_ns(open((proc + name).c_str(), O_RDONLY | O_CLOEXEC));
    struct stat a {
    }, b{};
    if (!theirs_ns || fstat(theirs_ns.get(), &a) != 0 ||
        stat(("/proc/self/ns/" + std::string(name)).c_str(), &b) != 0 || a.st_ino == b.st_ino) {
      continue;
    }
    extra.emplace_back(std::move(theirs_ns), flag);
  }
  if (setns(user.get(), CLONE_NEWUSER) != 0) throw sys_error("cannot join " + what, errno);
  if (setns(mnt.get(), CLONE_NEWNS) != 0) throw sys_error("cannot join " + what, errno);
  for (auto& [fd, flag] : extra) {
    if (setns(fd.get(), flag) != 0) throw sys_error("cannot join " + what, errno);
  }
}

void enter_container(pid_t keeper, const std::string& workdir, bool workdir_required,
                     bool id_call_filter, const std::string& what) {
  join_keeper(keeper, what);
  if (chdir(workdir.c_str()) != 0) {
    if (workdir_required) {
      throw sys_error("working directory " + workdir + " in " + what, errno,
                      "create it, mount it, or pick another with --container-workdir");
    }
    if (chdir("/") != 0) throw sys_error("chdir / in " + what, errno);
  }
  if (id_call_filter) install_id_call_filter();
}

std::map<std::string, std::string> environment_map(char** env) {
  std::map<std::string, std::string> out;
  for (char** e = env; e && *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

}  // namespace deepops
