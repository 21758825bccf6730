#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "util/unique_fd.hpp"

namespace deepops {

// One squashfs mount per image, shared by a user's containers: the second
// start of an image finds its files in the kernel's page cache and dentry
// cache, as a second run on an unpacked tree does, instead of reading and
// decompressing every block again through a fresh FUSE mount.
//
// The mount belongs to an image server: a process of the user's, detached
// from the container that started it, with a user and mount namespace of its
// own where it mounts the image (SquashfsMount, several servers). It listens
// on an abstract unix socket named after the user, the image file and the
// caller's cgroup; a container connects, receives a copy of the mount
// (open_tree(OPEN_TREE_CLONE), sent over the socket) and attaches it in its
// own namespaces (move_mount). The kernel checks FUSE access by the kernel
// uid, the same in every namespace of the user, and shows the files' owner
// as each container maps it (the user, or root when remapped).
//
// The connection stays open while the container runs: the server counts its
// users, and exits `linger` after the last one has gone (its servers with
// it). Only containers in the same cgroup share a server, so a job
// scheduler that kills a step's cgroup at its end (Slurm) never takes a
// mount from under another step. Peers of another uid are refused on both
// sides (SO_PEERCRED).
class SharedImage {
 public:
  // The image's server, started if none runs for this user, image and
  // cgroup. nullopt where none can be reached or started: the caller mounts
  // the image itself (and reports the image's own errors).
  static std::optional<SharedImage> connect(const std::filesystem::path& image,
                                            const std::filesystem::path& runtime_dir,
                                            std::chrono::seconds linger);

  // Attaches the image on `target` in the caller's current mount namespace.
  // False where the kernel refuses (no move_mount: Linux < 5.2); the caller
  // then mounts the image itself.
  bool attach(const std::filesystem::path& target);

 private:
  SharedImage(UniqueFd connection, UniqueFd mount)
      : connection_(std::move(connection)), mount_(std::move(mount)) {}
  UniqueFd connection_;  // open for as long as the container runs
  UniqueFd mount_;       // the server's mount, detached, until attached
};

// The abstract socket name of the server of `image` for this user and cgroup:
// the image file's identity (path, device, inode, size, change time), so a
// re-imported image gets a server of its own.
std::string image_server_name(const std::filesystem::path& image);

// Most containers one server counts at once; past it, a start mounts its own.
inline constexpr size_t kMaxImageServerClients = 1024;

}  // namespace deepops
