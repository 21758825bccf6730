#pragma once

#include <sys/types.h>

#include <filesystem>
#include <vector>

namespace deepops {

// A squashfs image mounted read-only through FUSE, served by forked children
// that run libsquashfuse_ll's handlers: no exec, no fusermount. The caller
// must hold CAP_SYS_ADMIN in its own user namespace (it calls mount(2)). The
// image's root-owned files are shown as the caller's, as its namespace maps
// it: root when the user is remapped to root, else the user's own ids.
//
// Several servers answer the one mount, one per CPU the caller may run on
// (up to kMaxSquashfsServers): libsquashfuse_ll keeps caches without locks,
// so it cannot serve from several threads, but processes each with their
// own copy of its state can, reading requests from the same /dev/fuse
// descriptor (squashfs_ops.hpp says what that asks of the handlers). Killing
// the children (or the caller's death, through PDEATHSIG) ends the mount
// together with the mount namespace.
class SquashfsMount {
 public:
  // Checks the image and mounts it on `mountpoint`. The mount is usable at
  // once: the kernel queues requests until a server answers.
  SquashfsMount(const std::filesystem::path& image, const std::filesystem::path& mountpoint);
  SquashfsMount(const SquashfsMount&) = delete;
  SquashfsMount& operator=(const SquashfsMount&) = delete;
  ~SquashfsMount();

  const std::vector<pid_t>& server_pids() const { return servers_; }

 private:
  std::vector<pid_t> servers_;
};

// Most server processes one mount gets: past this, readers wait on the disk
// or on the kernel, not on decompression.
inline constexpr unsigned kMaxSquashfsServers = 8;

// How many servers a mount made by this process gets: the CPUs it may run
// on (its affinity, which Slurm's task plugins set), from 1 to
// kMaxSquashfsServers.
unsigned squashfs_server_count();

// Throws Error(corrupt) unless `image` starts with a squashfs 4.0 superblock.
void check_squashfs_file(const std::filesystem::path& image);

}  // namespace deepops
