#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/mount_spec.hpp"

namespace deepops {

// What the admin hooks asked for, by appending to $ENROOT_MOUNTS and
// $ENROOT_ENVIRON.
struct AdminHookOutput {
  std::vector<MountEntry> mounts;
  std::vector<std::pair<std::string, std::string>> environ;
};

// Runs each executable in order, with the host environment plus Enroot's
// ENROOT_PID, ENROOT_ROOTFS, ENROOT_MOUNTS and ENROOT_ENVIRON (and DEEPOPS_
// twins). A hook that fails or runs past `timeout_s` throws an Error naming
// it, with the end of its output. Their mounts and environ lines get the same
// checks as the user's ('..' is rejected).
AdminHookOutput run_admin_hooks(const std::vector<std::filesystem::path>& hooks,
                                const std::filesystem::path& rootfs,
                                const std::filesystem::path& scratch,
                                const std::map<std::string, std::string>& env, int timeout_s = 120);

}  // namespace deepops
