#pragma once

#include <filesystem>
#include <string>

#include "config/settings.hpp"
#include "container/container.hpp"
#include "usecases/images.hpp"

// Containers, as every front end runs them: the spec built from the
// settings and the image, which the CLI's flags or a step's options then
// change; the export of a container's writes as a new image.
namespace deepops {

// The settings' part of a container: writable, remap-root, home, /dev and
// the seccomp filter as configured, mounts.d and environ.d (their ${VAR}
// from `files_env`), hooks.d, the runtime folder, the overlay kind and the
// hooks' view of the host.
ContainerSpec container_spec(const Settings& settings, const FoundImage& image,
                             const EnvLookup& files_env);

// What an export needs: the image, the layer holding the writes, and how
// that layer was written (its overlay kind: fuse-overlayfs and the kernel
// mark deletions differently).
struct ExportRequest {
  std::filesystem::path squashfs;
  ImageConfig config;
  std::string name;
  std::filesystem::path layer_dir;  // upper/ and work/
  std::filesystem::path runtime_dir;
  OverlayKind overlay = OverlayKind::automatic;
};

// A named container's export request under these settings.
ExportRequest export_request(const Settings& settings, const std::filesystem::path& squashfs,
                             const ImageConfig& config, const std::string& name,
                             const std::filesystem::path& layer_dir);

// The image and its writes as one new squashfs at `out`, with its .json
// beside it (ENV and CMD), for `deepops-ctr export` and --container-save.
void export_image(const ExportRequest& request, const std::filesystem::path& out);

}  // namespace deepops
