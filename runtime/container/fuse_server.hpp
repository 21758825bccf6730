#pragma once

#include <sys/types.h>

#include <filesystem>

#include "util/unique_fd.hpp"

namespace deepops {

// Opens /dev/fuse and mounts a FUSE filesystem of `fstype` ("fuse.NAME") on
// `target` with that descriptor, owned by the caller's (namespace) root. The
// mount is usable at once: the kernel queues requests until a server reads
// the returned descriptor.
UniqueFd mount_fuse(const std::filesystem::path& target, const char* fstype, unsigned long flags);

// First steps of a forked FUSE server: die with the keeper (PDEATHSIG), and
// out of the keeper's process group with group signals ignored, so that a
// terminal's Ctrl-C or `timeout` reaches the command, never the server
// first. Exits if the keeper is already gone.
void become_server_child(pid_t keeper);

// Kills a server started with become_server_child and reaps it.
void stop_server(pid_t server);

}  // namespace deepops
