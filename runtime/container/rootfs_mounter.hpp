#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/mount_spec.hpp"
#include "util/unique_fd.hpp"

namespace deepops {

// Mounts things into a container root that is not yet the process's root.
// Every target is resolved with openat2(RESOLVE_IN_ROOT), so a symlink in the
// image (/etc/resolv.conf -> /run/...) is followed as the container would see
// it and can never lead out of the root; mounts then go through the resolved
// descriptor (/proc/self/fd/N), so nothing can be swapped in between.
class RootfsMounter {
 public:
  explicit RootfsMounter(const std::filesystem::path& root);

  // The target as an O_PATH descriptor, created first when `create` says so.
  UniqueFd resolve(const std::string& target, MountEntry::Create create, bool source_is_dir);

  // Binds a host path (opened as the caller, so permissions are the caller's).
  void bind(const std::string& host_source, const std::string& target, bool recursive,
            bool read_only, MountEntry::Create create, unsigned long flags = 0);
  void mount_fs(const std::string& type, const std::string& source, const std::string& target,
                unsigned long flags, const std::string& data, MountEntry::Create create);
  // Applies a mounts-file or --mount entry.
  void apply(const MountEntry& m);

  bool exists(const std::string& target);
  // Creates (or replaces) a symlink or a small file inside the container.
  void symlink(const std::string& path, const std::string& target);
  void write_file(const std::string& path, const std::string& content);
  // Reads a file of the image (resolved inside the root); nullopt if absent.
  std::optional<std::string> read_file(const std::string& target);
  int root_fd() const { return root_.get(); }

 private:
  UniqueFd open_in_root(const std::string& path, int flags);
  void create_path(const std::string& target, bool as_dir);

  std::filesystem::path root_path_;
  UniqueFd root_;
};

// Changes mount attributes (ro/nosuid/nodev/noexec/nodiratime and the atime
// mode: noatime, strictatime or relatime) of the mount at `fd`,
// leaving the others as they are: a bind of a host mount keeps its locked
// flags, which a classic MS_REMOUNT would have to restate.
void set_mount_attributes(int fd, bool recursive, bool read_only, unsigned long flags);

// Sets the propagation of the mount at `fd` (a mount's root): one mount(2)
// call for each of MS_SHARED, MS_SLAVE, MS_PRIVATE and MS_UNBINDABLE in
// `types`, with MS_REC for those also in `recursive`.
void set_propagation(int fd, unsigned long types, unsigned long recursive);

std::string fd_path(int fd);

}  // namespace deepops
