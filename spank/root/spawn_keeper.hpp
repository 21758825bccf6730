#pragma once
// The plugin's privileged code, all of it: the one place where a root
// process of Slurm (slurmstepd, or slurmd's epilog) starts ours. Read it
// whole when reviewing: see spawn_keeper.cpp.
#include <sys/types.h>

#include <filesystem>
#include <string>

#include "keeper_protocol.hpp"
#include "util/unique_fd.hpp"

namespace deepops::spank {

struct KeeperProcess {
  pid_t pid = -1;
  UniqueFd pidfd;    // the child's pidfd; empty before Linux 5.3
  UniqueFd request;  // write the request here (non-blocking), then close it
  UniqueFd report;   // progress lines and the report come here
};

// Starts `program ACTION` as `who`, for good (real, effective and saved ids,
// the groups given), in a process group of its own, with stdio on /dev/null,
// the request pipe on fd 3 and the report pipe on fd 4 and no other
// descriptor, no signal blocked or ignored, and PATH as its only variable.
// No parent-death signal: it follows the thread that cloned, and
// slurmstepd's threads end before its exit callback stops the keeper (which
// then could not clean up); a step's processes outliving slurmstepd are
// Slurm's to end (proctrack). Before dropping root it makes
// `runtime_path`/UID (mode 0700, the user's) when `runtime_path` is set.
//
// Never fork(): slurmstepd is multithreaded, and a forked copy of it may only
// make async-signal-safe calls, and would run libslurm's atfork handlers.
// The child here shares the parent's memory until it execs (as posix_spawn's
// does), makes raw system calls only, and the parent waits for the exec:
// no lock, no allocation, no code of a library runs in between. Throws
// Error naming the step that failed.
KeeperProcess spawn_keeper(const std::string& program, const char* action, const UserIdentity& who,
                           const std::filesystem::path& runtime_path);

}  // namespace deepops::spank
