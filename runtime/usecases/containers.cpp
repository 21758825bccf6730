#include "usecases/containers.hpp"

namespace deepops {

namespace {

// The image a spec runs: its squashfs, its config (ENV, CMD...) and its name.
ContainerSpec spec_for(const std::filesystem::path& squashfs, const ImageConfig& config,
                       const std::string& name) {
  ContainerSpec spec;
  spec.squashfs = squashfs;
  spec.image = config;
  spec.image_name = name;
  return spec;
}

}  // namespace

ContainerSpec container_spec(const Settings& settings, const FoundImage& image,
                             const EnvLookup& files_env) {
  ContainerSpec spec = spec_for(image.squashfs, image.config, image.name);
  spec.writable = settings.rootfs_writable;
  spec.remap_root = settings.remap_root;
  spec.mount_home = settings.mount_home;
  spec.restrict_dev = settings.restrict_dev;
  spec.id_call_filter = settings.seccomp_filter;
  spec.mounts = settings.load_mounts(files_env);
  spec.environ = settings.load_environ(files_env);
  spec.hooks = settings.hooks();
  spec.runtime_dir = settings.runtime_path;
  spec.overlay = settings.overlay;
  spec.image_mount_linger = settings.image_mount_linger;
  spec.host.root = settings.host_root;
  spec.host.library_dirs = settings.driver_library_dirs;
  spec.host.slurm_tmpfs = settings.slurm_tmpfs;
  return spec;
}

ExportRequest export_request(const Settings& settings, const std::filesystem::path& squashfs,
                             const ImageConfig& config, const std::string& name,
                             const std::filesystem::path& layer_dir) {
  return ExportRequest{squashfs, config, name, layer_dir, settings.runtime_path, settings.overlay};
}

void export_image(const ExportRequest& request, const std::filesystem::path& out) {
  ContainerSpec spec = spec_for(request.squashfs, request.config, request.name);
  spec.persistent_dir = request.layer_dir;
  spec.runtime_dir = request.runtime_dir;
  spec.overlay = request.overlay;
  export_container(spec, out);
}

}  // namespace deepops
