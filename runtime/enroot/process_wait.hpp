#pragma once

#include <sys/types.h>

#include <string>

namespace deepops::enroot {

// Stops a container's keeper as `enroot remove -f` must before removing:
// SIGTERM (the keeper passes it on to the command), up to 10 s for it to
// exit, then SIGKILL and up to 5 s more. Waits on the process itself (a
// pidfd), never on a fixed sleep. Throws when it is still there.
void stop_process(pid_t pid, const std::string& what);

}  // namespace deepops::enroot
