#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace deepops {

// Where the native hooks look for the host's devices, driver files and
// sysfs. Tests point `root` at a fixture tree with stand-in files.
struct HostView {
  std::filesystem::path root = "/";
  // Folders searched for driver libraries, relative to root; empty: the
  // folders of the host's ld.so cache (ldconfig -p) and the usual ones.
  std::vector<std::string> library_dirs;
  // Slurm's TmpFS (slurm.conf), where its PMIx plugin has OpenMPI put each
  // step's session folder (spmix_appdir_*); "%n" stands for the node name.
  std::string slurm_tmpfs = "/tmp";

  std::filesystem::path host(const std::string& absolute) const;  // root + path
};

// What a native hook wants done to the container. Hooks never mount
// anything themselves: the runtime applies plans, with the same checks as
// for user mounts.
struct HookPlan {
  struct Bind {
    std::string source;  // host path (under HostView::root)
    std::string target;  // path inside the container
    bool read_only = true;
  };
  struct Symlink {
    std::string path;  // inside the container
    std::string target;
  };
  std::vector<std::string> tmpfs;  // container folders to cover first (views of /sys)
  std::vector<Bind> binds;
  std::vector<Symlink> symlinks;
  std::map<std::string, std::string> env;
  bool run_ldconfig = false;

  void merge(const HookPlan& other);
};

using Environment = std::map<std::string, std::string>;

// GPUs: NVIDIA_VISIBLE_DEVICES (unset/void: none; all; none: driver only;
// indexes or UUIDs), narrowed to Slurm's allocation (SLURM_STEP_GPUS or
// SLURM_JOB_GPUS) or, outside Slurm, to CUDA_VISIBLE_DEVICES. Device nodes,
// then the driver's libraries for NVIDIA_DRIVER_CAPABILITIES (default
// utility), its binaries and firmware; ldconfig runs inside.
HookPlan plan_gpu(const HostView& host, const Environment& env);

// InfiniBand/RoCE: MELLANOX_VISIBLE_DEVICES (unset/void: none; all; indexes
// into the sorted device list, or names like mlx5_0): their uverbs nodes,
// rdma_cm, and /sys/class/infiniband{,_verbs} views showing just them.
HookPlan plan_infiniband(const HostView& host, const Environment& env);

// PMIx/PMI2 from Slurm: the PMIx server's socket folder, Slurm's TmpFS
// (where OpenMPI puts its session folder; shared by the node's tasks), and
// settings that let the image's PMIx client talk to the host's server.
HookPlan plan_pmix(const HostView& host, const Environment& env);

// The driver libraries for a capability list ("compute,utility", "all").
std::vector<std::string> gpu_library_prefixes(const std::string& capabilities);

// "libcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1" lines.
std::vector<std::string> parse_ldconfig_dirs(const std::string& ldconfig_output);

}  // namespace deepops
