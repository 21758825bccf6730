#pragma once

#include <sys/types.h>

#include <filesystem>

namespace deepops {

// A squashfs image mounted read-only through FUSE, served by a forked child
// that runs libsquashfuse_ll's handlers: no exec, no fusermount. The caller
// must hold CAP_SYS_ADMIN in its own user namespace (it calls mount(2)). The
// image's root-owned files are shown as the caller's, as its namespace maps
// it: root when the user is remapped to root, else the user's own ids.
// Killing the child (or the caller's death, through PDEATHSIG) ends the mount
// together with the mount namespace.
class SquashfsMount {
 public:
  // Checks the image and mounts it on `mountpoint`. The mount is usable at
  // once: the kernel queues requests until the server answers.
  SquashfsMount(const std::filesystem::path& image, const std::filesystem::path& mountpoint);
  SquashfsMount(const SquashfsMount&) = delete;
  SquashfsMount& operator=(const SquashfsMount&) = delete;
  ~SquashfsMount();

  pid_t server_pid() const { return server_; }

 private:
  pid_t server_ = -1;
};

// Throws Error(corrupt) unless `image` starts with a squashfs 4.0 superblock.
void check_squashfs_file(const std::filesystem::path& image);

}  // namespace deepops
