#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/overlay_kind.hpp"

namespace deepops {

// An overlay mounted on `target`. With fuse-overlayfs the server is a child
// started on an already mounted /dev/fuse descriptor (so the mount is ready
// when this returns), killed by the destructor or by PDEATHSIG.
class OverlayMount {
 public:
  // `lowers`: the read-only layers, top first.
  OverlayMount(const std::vector<std::filesystem::path>& lowers, const std::filesystem::path& upper,
               const std::filesystem::path& work, const std::filesystem::path& target,
               OverlayKind kind);
  OverlayMount(const OverlayMount&) = delete;
  OverlayMount& operator=(const OverlayMount&) = delete;
  ~OverlayMount();

  bool uses_fuse() const { return server_ > 0; }

 private:
  void start_fuse_overlayfs(const std::string& options, const std::filesystem::path& target);
  pid_t server_ = -1;
};

}  // namespace deepops
