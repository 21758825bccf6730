#pragma once
// Joining a running keeper's namespaces: all that the SPANK plugin's tasks
// need of the runtime, kept apart so that the plugin links nothing heavier
// (no FUSE, no image code).
#include <sys/types.h>

#include <string>

namespace deepops {

// Joins the user and mount namespaces of a running keeper, and the net, IPC
// and UTS ones it unshared. Throws Error (busy while it is still starting).
void join_keeper(pid_t keeper, const std::string& what);

}  // namespace deepops
