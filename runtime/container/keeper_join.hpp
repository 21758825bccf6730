#pragma once
// Joining a running keeper's namespaces: all that the SPANK plugin's tasks
// need of the runtime, kept apart so that the plugin links nothing heavier
// (no FUSE, no image code).
#include <sys/types.h>

#include <map>
#include <string>

namespace deepops {

// Joins the user and mount namespaces of a running keeper, and the net, IPC
// and UTS ones it unshared. Throws Error (busy while it is still starting).
void join_keeper(pid_t keeper, const std::string& what);

// Moves the calling process itself into a running container, as its command
// would be: the keeper's user and mount namespaces (the caller's ids inside
// are the keeper's: the user's own, or root if the keeper was remapped), the
// working directory, then the seccomp filter. The caller must be
// single-threaded and dumpable; it goes on to exec the command itself (a
// Slurm task). `what` names the container in messages.
void enter_container(pid_t keeper, const std::string& workdir, bool workdir_required,
                     bool id_call_filter, const std::string& what);

// Any NAME=value array (environ, a job's environment) as a map.
std::map<std::string, std::string> environment_map(char** env);

}  // namespace deepops
