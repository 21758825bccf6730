// The native hooks against a fixture tree standing in for a GPU + InfiniBand
// host: regular files play the device nodes and driver libraries.
#include "container/hooks.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "util/error.hpp"

namespace deepops {
namespace {
namespace fs = std::filesystem;

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hooks-test.XXXXXX";
    root_ = mkdtemp(tmpl);
    host_.root = root_;
    host_.library_dirs = {"/usr/lib/x86_64-linux-gnu"};
    for (const char* dev :
         {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia0", "nvidia1",
          "nvidia2", "nvidia3", "infiniband/uverbs0", "infiniband/uverbs1", "infiniband/rdma_cm"}) {
      touch(std::string("/dev/") + dev);
    }
    write("/proc/driver/nvidia/version",
          "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC "
          "2024\n");
    // Bus order differs from minor numbers: index 1 is /dev/nvidia3.
    gpu("0000:07:00.0", 0, "GPU-aaaa");
    gpu("0000:0f:00.0", 3, "GPU-bbbb");
    gpu("0000:47:00.0", 1, "GPU-cccc");
    gpu("0000:4e:00.0", 2, "GPU-dddd");
    const std::string lib = "/usr/lib/x86_64-linux-gnu/";
    for (const char* f :
         {"libcuda.so.550.54.15", "libcuda.so.535.104.05", "libnvidia-ml.so.550.54.15",
          "libnvidia-encode.so.550.54.15", "libnvidia-ptxjitcompiler.so.550.54.15"}) {
      touch(lib + f);
    }
    fs::create_symlink("libcuda.so.550.54.15", path(lib + "libcuda.so.1"));
    touch("/usr/bin/nvidia-smi");
    touch("/usr/bin/nvidia-cuda-mps-control");
    touch("/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin");
    rdma("mlx5_0", "0000:3b:00.0", "uverbs0");
    rdma("mlx5_1", "0000:86:00.0", "uverbs1");
    write("/sys/class/infiniband_verbs/abi_version", "6\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path path(const std::string& p) { return root_ / fs::path(p).relative_path(); }
  void write(const std::string& p, const std::string& text) {
    fs::create_directories(path(p).parent_path());
    std::ofstream(path(p)) << text;
  }
  void touch(const std::string& p) { write(p, ""); }
  void gpu(const std::string& bus, int minor, const std::string& uuid) {
    write("/proc/driver/nvidia/gpus/" + bus + "/information",
          "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ: \t\t 0\nGPU UUID: \t " + uuid +
              "\nDevice Minor: \t " + std::to_string(minor) + "\n");
  }
  void rdma(const std::string& name, const std::string& pci, const std::string& uverbs) {
    const std::string dev = "/sys/devices/pci0000:00/" + pci;
    fs::create_directories(path(dev + "/infiniband/" + name));
    fs::create_directories(path(dev + "/infiniband_verbs/" + uverbs));
    fs::create_symlink("../../../" + pci, path(dev + "/infiniband/" + name + "/device"));
    fs::create_directories(path("/sys/class/infiniband"));
    fs::create_directories(path("/sys/class/infiniband_verbs"));
    fs::create_symlink("../../devices/pci0000:00/" + pci + "/infiniband/" + name,
                       path("/sys/class/infiniband/" + name));
    fs::create_symlink("../../devices/pci0000:00/" + pci + "/infiniband_verbs/" + uverbs,
                       path("/sys/class/infiniband_verbs/" + uverbs));
  }

  // The container paths a plan binds, sorted.
  static std::vector<std::string> targets(const HookPlan& p) {
    std::vector<std::string> out;
    for (const auto& b : p.binds) out.push_back(b.target);
    std::sort(out.begin(), out.end());
    return out;
  }
  static bool binds(const HookPlan& p, const std::string& target) {
    auto t = targets(p);
    return std::find(t.begin(), t.end(), target) != t.end();
  }
  static std::vector<std::string> gpu_nodes(const HookPlan& p) {
    std::vector<std::string> out;
    for (const auto& t : targets(p)) {
      if (t.starts_with("/dev/nvidia") && t.size() == 12) out.push_back(t);
    }
    return out;
  }

  fs::path root_;
  HostView host_;
};

TEST_F(HooksTest, GpuHookIsOffUnlessAsked) {
  EXPECT_TRUE(plan_gpu(host_, {}).binds.empty());
  EXPECT_TRUE(plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "void"}}).binds.empty());
  EXPECT_TRUE(plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", ""}}).binds.empty());
}

TEST_F(HooksTest, AllGpusWithDefaultUtilityCapability) {
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"}});
  EXPECT_EQ(gpu_nodes(p), (std::vector<std::string>{"/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2",
                                                    "/dev/nvidia3"}));
  for (const char* t : {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                        "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15",
                        "/usr/bin/nvidia-smi", "/lib/firmware/nvidia/550.54.15"}) {
    EXPECT_TRUE(binds(p, t)) << t;
  }
  EXPECT_FALSE(binds(p, "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"));  // compute only
  EXPECT_FALSE(binds(p, "/dev/nvidia-modeset"));                             // display only
  EXPECT_FALSE(binds(p, "/usr/bin/nvidia-cuda-mps-control"));
  EXPECT_EQ(p.env.at("NVIDIA_VISIBLE_DEVICES"), "0,1,2,3");
  EXPECT_TRUE(p.run_ldconfig);
  for (const auto& b : p.binds) EXPECT_TRUE(b.source.starts_with(root_.string())) << b.source;
}

TEST_F(HooksTest, ComputePicksTheRunningDriversLibraries) {
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"},
                                {"NVIDIA_DRIVER_CAPABILITIES", "compute,utility"}});
  EXPECT_TRUE(binds(p, "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"));
  EXPECT_FALSE(binds(p, "/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05"));
  EXPECT_FALSE(binds(p, "/usr/lib/x86_64-linux-gnu/libcuda.so.1"));  // ldconfig's job
  EXPECT_TRUE(binds(p, "/usr/lib/x86_64-linux-gnu/libnvidia-ptxjitcompiler.so.550.54.15"));
  EXPECT_FALSE(binds(p, "/usr/lib/x86_64-linux-gnu/libnvidia-encode.so.550.54.15"));  // video
  EXPECT_TRUE(binds(p, "/usr/bin/nvidia-cuda-mps-control"));
}

TEST_F(HooksTest, AllCapabilitiesAddVideoAndModeset) {
  HookPlan p =
      plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "0"}, {"NVIDIA_DRIVER_CAPABILITIES", "all"}});
  EXPECT_TRUE(binds(p, "/usr/lib/x86_64-linux-gnu/libnvidia-encode.so.550.54.15"));
  EXPECT_TRUE(binds(p, "/dev/nvidia-modeset"));
}

TEST_F(HooksTest, SelectionByIndexUsesBusOrderNotMinor) {
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "1"}});
  EXPECT_EQ(gpu_nodes(p), std::vector<std::string>{"/dev/nvidia3"});
  EXPECT_EQ(p.env.at("NVIDIA_VISIBLE_DEVICES"), "1");
}

TEST_F(HooksTest, SelectionByUuid) {
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "GPU-cccc,GPU-aaaa"}});
  EXPECT_EQ(gpu_nodes(p), (std::vector<std::string>{"/dev/nvidia0", "/dev/nvidia1"}));
}

TEST_F(HooksTest, SlurmAllocationNarrowsAll) {
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"},
                                {"SLURM_JOB_ID", "42"},
                                {"SLURM_STEP_GPUS", "2,3"},
                                {"CUDA_VISIBLE_DEVICES", "0,1"}});
  // Slurm names minors: /dev/nvidia2 and /dev/nvidia3, which are indexes 3 and 1.
  EXPECT_EQ(gpu_nodes(p), (std::vector<std::string>{"/dev/nvidia2", "/dev/nvidia3"}));
  EXPECT_EQ(p.env.at("NVIDIA_VISIBLE_DEVICES"), "3,1");
}

TEST_F(HooksTest, AskingForAGpuOutsideTheAllocationFails) {
  try {
    plan_gpu(host_,
             {{"NVIDIA_VISIBLE_DEVICES", "0"}, {"SLURM_JOB_ID", "42"}, {"SLURM_JOB_GPUS", "2,3"}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'0'"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("--gpus"), std::string::npos);
  }
}

// As on a GPU machine seen in the wild: the driver under /usr/local/nvidia,
// and /usr/bin/nvidia-smi a script that execs /usr/local/nvidia/bin/nvidia-smi,
// a path the container does not have. The program itself must be bound.
TEST_F(HooksTest, DriverToolsFromARelocatedDriverAreTheProgramsNotWrappers) {
  host_.library_dirs = {"/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu"};
  write("/usr/local/nvidia/lib64/libnvidia-ml.so.550.54.15", "");
  write("/usr/local/nvidia/bin/nvidia-smi", std::string("\x7f"
                                                        "ELF\2\1\1",
                                                        7));
  write("/usr/bin/nvidia-smi", "#!/bin/sh\nexec /usr/local/nvidia/bin/nvidia-smi \"$@\"\n");
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"}});
  auto smi = std::find_if(p.binds.begin(), p.binds.end(),
                          [](const auto& b) { return b.target == "/usr/bin/nvidia-smi"; });
  ASSERT_NE(smi, p.binds.end());
  EXPECT_EQ(smi->source, (root_ / "usr/local/nvidia/bin/nvidia-smi").string());
  // A wrapper alone is still better than nothing.
  fs::remove(path("/usr/local/nvidia/bin/nvidia-smi"));
  p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"}});
  EXPECT_TRUE(binds(p, "/usr/bin/nvidia-smi"));
}

TEST_F(HooksTest, CudaVisibleDevicesNarrowsOutsideSlurm) {
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"}, {"CUDA_VISIBLE_DEVICES", "3"}});
  EXPECT_EQ(gpu_nodes(p), std::vector<std::string>{"/dev/nvidia2"});
}

TEST_F(HooksTest, NoneMeansDriverButNoGpu) {
  HookPlan p = plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "none"}});
  EXPECT_TRUE(gpu_nodes(p).empty());
  EXPECT_TRUE(binds(p, "/dev/nvidiactl"));
  EXPECT_TRUE(binds(p, "/usr/bin/nvidia-smi"));
  EXPECT_EQ(p.env.at("NVIDIA_VISIBLE_DEVICES"), "none");
}

TEST_F(HooksTest, UnknownCapabilityAndMissingDriverAreClearErrors) {
  EXPECT_THROW(plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"},
                                {"NVIDIA_DRIVER_CAPABILITIES", "compute,warp"}}),
               Error);
  fs::remove(path("/dev/nvidiactl"));
  try {
    plan_gpu(host_, {{"NVIDIA_VISIBLE_DEVICES", "all"}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no NVIDIA driver"), std::string::npos) << e.what();
  }
}

TEST_F(HooksTest, InfinibandAllDevices) {
  EXPECT_TRUE(plan_infiniband(host_, {}).binds.empty());
  HookPlan p = plan_infiniband(host_, {{"MELLANOX_VISIBLE_DEVICES", "all"}});
  EXPECT_EQ(targets(p), (std::vector<std::string>{
                            "/dev/infiniband/rdma_cm", "/dev/infiniband/uverbs0",
                            "/dev/infiniband/uverbs1", "/sys/class/infiniband_verbs/abi_version"}));
  EXPECT_EQ(p.tmpfs,
            (std::vector<std::string>{"/sys/class/infiniband", "/sys/class/infiniband_verbs"}));
  ASSERT_EQ(p.symlinks.size(), 4u);
  EXPECT_EQ(p.symlinks[0].path, "/sys/class/infiniband/mlx5_0");
  EXPECT_EQ(p.symlinks[0].target, "../../devices/pci0000:00/0000:3b:00.0/infiniband/mlx5_0");
}

TEST_F(HooksTest, InfinibandByIndexAndName) {
  HookPlan by_index = plan_infiniband(host_, {{"MELLANOX_VISIBLE_DEVICES", "1"}});
  EXPECT_TRUE(binds(by_index, "/dev/infiniband/uverbs1"));
  EXPECT_FALSE(binds(by_index, "/dev/infiniband/uverbs0"));
  ASSERT_EQ(by_index.symlinks.size(), 2u);
  EXPECT_EQ(by_index.symlinks[0].path, "/sys/class/infiniband/mlx5_1");
  EXPECT_EQ(by_index.symlinks[1].path, "/sys/class/infiniband_verbs/uverbs1");
  HookPlan by_name = plan_infiniband(host_, {{"MELLANOX_VISIBLE_DEVICES", "mlx5_0"}});
  EXPECT_TRUE(binds(by_name, "/dev/infiniband/uverbs0"));
  EXPECT_FALSE(binds(by_name, "/dev/infiniband/uverbs1"));
  EXPECT_THROW(plan_infiniband(host_, {{"MELLANOX_VISIBLE_DEVICES", "7"}}), Error);
}

TEST_F(HooksTest, PmixSocketsAndVersionSafeSettings) {
  fs::create_directories(path("/var/spool/slurmd/pmix.42.0"));
  HookPlan p = plan_pmix(host_, {{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.42.0"},
                                 {"PMIX_NAMESPACE", "slurm.pmix.42.0"},
                                 {"PMIX_MCA_ptl", "tcp"}});
  EXPECT_TRUE(binds(p, "/var/spool/slurmd/pmix.42.0"));
  EXPECT_FALSE(p.binds[0].read_only);
  EXPECT_EQ(p.env.at("PMIX_MCA_gds"), "hash");
  EXPECT_FALSE(p.env.contains("PMIX_MCA_ptl"));  // the job's own choice stays
  EXPECT_TRUE(plan_pmix(host_, {}).binds.empty());
  EXPECT_TRUE(plan_pmix(host_, {{"PMIX_SERVER_TMPDIR", "/a/../etc"}}).binds.empty());
}

TEST_F(HooksTest, PmixClientIsHeldToTheServersModules) {
  HookPlan p = plan_pmix(host_, {{"PMIX_NAMESPACE", "slurm.pmix.42.0"},
                                 {"PMIX_PTL_MODULE", "tcp,usock"},
                                 {"PMIX_SECURITY_MODE", "munge,native"},
                                 {"PMIX_GDS_MODULE", "ds21,ds12,hash"}});
  EXPECT_EQ(p.env.at("PMIX_MCA_ptl"), "tcp,usock");
  EXPECT_EQ(p.env.at("PMIX_MCA_psec"), "munge,native");
  EXPECT_EQ(p.env.at("PMIX_MCA_gds"), "hash");
  HookPlan no_hash = plan_pmix(host_, {{"PMIX_NAMESPACE", "x"}, {"PMIX_GDS_MODULE", "ds21"}});
  EXPECT_EQ(no_hash.env.at("PMIX_MCA_gds"), "ds21");
}

TEST_F(HooksTest, PmixSharesSlurmsTmpFsWithTheNodesTasks) {
  host_.slurm_tmpfs = "/var/slurm/tmp/%n";
  fs::create_directories(path("/var/slurm/tmp/node7"));
  HookPlan p = plan_pmix(host_, {{"PMIX_NAMESPACE", "slurm.pmix.42.3"},
                                 {"SLURM_JOB_ID", "42"},
                                 {"SLURMD_NODENAME", "node7"}});
  EXPECT_TRUE(binds(p, "/var/slurm/tmp/node7"));
  EXPECT_TRUE(
      plan_pmix(host_, {{"SLURM_JOB_ID", "42"}, {"SLURMD_NODENAME", "node8"}}).binds.empty());
  EXPECT_TRUE(plan_pmix(host_, {{"PMIX_NAMESPACE", "x"}}).binds.empty());  // not under Slurm
}

TEST(LdconfigTest, FoldersOfTheCache) {
  const char* text =
      "1234 libs found in cache `/etc/ld.so.cache'\n"
      "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\n"
      "\tlibfoo.so (libc6,x86-64) => /opt/foo/lib/libfoo.so\n"
      "\tlibbar.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libbar.so.2\n"
      "garbage => relative/path.so\n";
  EXPECT_EQ(parse_ldconfig_dirs(text),
            (std::vector<std::string>{"/usr/lib/x86_64-linux-gnu", "/opt/foo/lib"}));
}

}  // namespace
}  // namespace deepops
