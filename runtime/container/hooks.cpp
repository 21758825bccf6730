// The native hooks: each turns the host (seen through HostView) and the
// container's environment into a HookPlan. They read files only, so the
// tests run them against fixture trees.
#include "container/hooks.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

std::string env_or(const Environment& env, const std::string& key, const std::string& fallback) {
  auto it = env.find(key);
  return it == env.end() ? fallback : it->second;
}

std::string first_line_after(const fs::path& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key)) {
      std::string v = line.substr(key.size());
      v.erase(0, v.find_first_not_of(" \t:"));
      return v;
    }
  }
  return {};
}

bool is_number(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Gpu {
  int index = 0;  // PCI bus order, as nvidia-smi numbers them
  int minor = 0;  // /dev/nvidia<minor>
  std::string uuid;
};

std::vector<Gpu> host_gpus(const HostView& host) {
  std::vector<Gpu> gpus;
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(host.host("/proc/driver/nvidia/gpus"), ec)) {
    dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    std::string minor = first_line_after(d / "information", "Device Minor");
    if (minor.empty()) minor = first_line_after(d / "information", "Minor Number");
    if (!is_number(minor)) continue;
    gpus.push_back({static_cast<int>(gpus.size()), std::stoi(minor),
                    first_line_after(d / "information", "GPU UUID")});
  }
  return gpus;
}

bool matches(const Gpu& g, const std::string& id) {
  return (is_number(id) && std::stoi(id) == g.index) || (!g.uuid.empty() && id == g.uuid);
}

// The GPUs this job may use. Slurm's SLURM_STEP_GPUS/SLURM_JOB_GPUS name
// device minors (gres.conf File=/dev/nvidia[0-N]); CUDA_VISIBLE_DEVICES
// outside Slurm names indexes or UUIDs. Inside a Slurm job without GPU
// variables, the job was given none.
std::vector<Gpu> allocated_gpus(const std::vector<Gpu>& all, const Environment& env) {
  std::string slurm = env_or(env, "SLURM_STEP_GPUS", env_or(env, "SLURM_JOB_GPUS", ""));
  std::vector<Gpu> out;
  if (!slurm.empty()) {
    for (const auto& id : split_list(slurm, ',')) {
      for (const auto& g : all) {
        if (is_number(id) && std::stoi(id) == g.minor) out.push_back(g);
      }
    }
    return out;
  }
  auto cuda = env.find("CUDA_VISIBLE_DEVICES");
  if (env.contains("SLURM_JOB_ID") || cuda == env.end()) return all;
  for (const auto& id : split_list(cuda->second, ',')) {
    for (const auto& g : all) {
      if (matches(g, id)) out.push_back(g);
    }
  }
  return out;
}

std::vector<Gpu> selected_gpus(const HostView& host, const std::string& visible,
                               const Environment& env) {
  if (visible == "none") return {};
  auto allocated = allocated_gpus(host_gpus(host), env);
  if (visible == "all") return allocated;
  std::vector<Gpu> out;
  for (const auto& id : split_list(visible, ',')) {
    auto it = std::find_if(allocated.begin(), allocated.end(),
                           [&](const Gpu& g) { return matches(g, id); });
    if (it == allocated.end()) {
      throw Error(Errc::invalid_argument,
                  "GPU hook: NVIDIA_VISIBLE_DEVICES names GPU '" + id +
                      "', which this node does not have or the job was not given",
                  "use NVIDIA_VISIBLE_DEVICES=all, or ask Slurm for it (--gpus)");
    }
    out.push_back(*it);
  }
  return out;
}

std::string driver_version(const HostView& host) {
  std::ifstream in(host.host("/proc/driver/nvidia/version"));
  std::string line, word, prev;
  std::getline(in, line);
  std::istringstream words(line);
  // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 ..."
  while (words >> word) {
    if (prev == "Module") return word;
    prev = word;
  }
  return {};
}

std::vector<std::string> library_dirs(const HostView& host) {
  if (!host.library_dirs.empty()) return host.library_dirs;
  std::vector<std::string> dirs;
  if (host.root == "/") {
    if (FILE* p = popen("/sbin/ldconfig -p 2>/dev/null", "r")) {
      std::string text;
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
      pclose(p);
      dirs = parse_ldconfig_dirs(text);
    }
  }
  for (const char* d : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                        "/usr/lib", "/lib64"}) {
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  }
  return dirs;
}

// The driver's copy of one library: "libcuda.so" -> /usr/lib/.../libcuda.so.550.54.15.
std::string find_library(const HostView& host, const std::vector<std::string>& dirs,
                         const std::string& prefix, const std::string& version) {
  for (const auto& dir : dirs) {
    std::error_code ec;
    std::string best;
    for (const auto& e : fs::directory_iterator(host.host(dir), ec)) {
      std::string name = e.path().filename().string();
      if (!name.starts_with(prefix + ".") || e.is_symlink(ec) || !e.is_regular_file(ec)) continue;
      if (!version.empty() && name == prefix + "." + version) return dir + "/" + name;
      if (name > best) best = name;
    }
    if (!best.empty()) return dir + "/" + best;
  }
  return {};
}

void add_if_exists(HookPlan& plan, const HostView& host, const std::string& path, bool ro,
                   const std::string& target = {}) {
  std::error_code ec;
  if (fs::exists(host.host(path), ec)) {
    plan.binds.push_back({host.host(path).string(), target.empty() ? path : target, ro});
  }
}

}  // namespace

fs::path HostView::host(const std::string& absolute) const {
  return root == "/" ? fs::path(absolute) : root / fs::path(absolute).relative_path();
}

void HookPlan::merge(const HookPlan& o) {
  tmpfs.insert(tmpfs.end(), o.tmpfs.begin(), o.tmpfs.end());
  binds.insert(binds.end(), o.binds.begin(), o.binds.end());
  symlinks.insert(symlinks.end(), o.symlinks.begin(), o.symlinks.end());
  for (const auto& [k, v] : o.env) env[k] = v;
  run_ldconfig |= o.run_ldconfig;
}

std::vector<std::string> parse_ldconfig_dirs(const std::string& text) {
  std::vector<std::string> dirs;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto arrow = line.find(" => ");
    if (arrow == std::string::npos) continue;
    std::string path = line.substr(arrow + 4);
    auto slash = path.rfind('/');
    if (path.empty() || path[0] != '/' || slash == std::string::npos || slash == 0) continue;
    std::string dir = path.substr(0, slash);
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }
  return dirs;
}

std::vector<std::string> gpu_library_prefixes(const std::string& capabilities) {
  static const std::map<std::string, std::vector<std::string>> kLibraries = {
      {"utility", {"libnvidia-ml.so", "libnvidia-cfg.so"}},
      {"compute",
       {"libcuda.so", "libcudadebugger.so", "libnvidia-opencl.so", "libnvidia-ptxjitcompiler.so",
        "libnvidia-allocator.so", "libnvidia-nvvm.so", "libnvidia-gpucomp.so"}},
      {"video",
       {"libvdpau_nvidia.so", "libnvidia-encode.so", "libnvidia-opticalflow.so", "libnvcuvid.so"}},
      {"graphics",
       {"libnvidia-eglcore.so", "libnvidia-glcore.so", "libnvidia-tls.so", "libnvidia-glsi.so",
        "libnvidia-rtcore.so", "libnvoptix.so", "libGLX_nvidia.so", "libEGL_nvidia.so",
        "libGLESv2_nvidia.so", "libGLESv1_CM_nvidia.so", "libnvidia-glvkspirv.so"}},
      {"display", {"libnvidia-fbc.so"}},
      {"ngx", {"libnvidia-ngx.so"}},
      {"compat32", {}},
  };
  std::set<std::string> caps;
  for (const auto& c : split_list(capabilities, ',')) {
    if (c == "all") {
      for (const auto& [name, libs] : kLibraries) caps.insert(name);
    } else if (kLibraries.contains(c)) {
      caps.insert(c);
    } else {
      throw Error(Errc::invalid_argument,
                  "GPU hook: unknown NVIDIA_DRIVER_CAPABILITIES entry '" + c + "'",
                  "use compute, utility, video, graphics, display, ngx, compat32 or all");
    }
  }
  std::vector<std::string> out;
  for (const auto& c : caps) {
    const auto& libs = kLibraries.at(c);
    out.insert(out.end(), libs.begin(), libs.end());
  }
  return out;
}

namespace {

// Where the driver's programs may be: beside its libraries first (a driver
// installed under /usr/local/nvidia or /opt keeps them in ../bin), then the
// usual folders.
std::vector<std::string> driver_tool_dirs(const std::vector<std::string>& lib_dirs) {
  std::vector<std::string> dirs;
  for (const auto& d : lib_dirs) {
    std::string bin = fs::path(d).parent_path().append("bin").string();
    if (std::find(dirs.begin(), dirs.end(), bin) == dirs.end()) dirs.push_back(bin);
  }
  for (const char* d : {"/usr/bin", "/usr/sbin", "/bin"}) {
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);
  }
  return dirs;
}

bool is_elf(const fs::path& file) {
  char magic[4] = {};
  std::ifstream in(file, std::ios::binary);
  return in.read(magic, sizeof(magic)) && std::string_view(magic, 4) ==
                                              "\x7f"
                                              "ELF";
}

// The program itself, not a wrapper: with the driver elsewhere, /usr/bin may
// hold a script that execs a path the container does not have. An ELF file
// wins; a script is taken only when nothing better exists.
std::string find_driver_tool(const HostView& host, const std::vector<std::string>& dirs,
                             const std::string& name) {
  std::string fallback;
  std::error_code ec;
  for (const auto& d : dirs) {
    const std::string path = d + "/" + name;
    if (!fs::is_regular_file(host.host(path), ec)) continue;
    if (is_elf(host.host(path))) return path;
    if (fallback.empty()) fallback = path;
  }
  return fallback;
}

}  // namespace

HookPlan plan_gpu(const HostView& host, const Environment& env) {
  HookPlan plan;
  auto visible = env.find("NVIDIA_VISIBLE_DEVICES");
  if (visible == env.end() || visible->second.empty() || visible->second == "void") return plan;
  std::string caps = env_or(env, "NVIDIA_DRIVER_CAPABILITIES", "");
  if (caps.empty()) caps = "utility";
  std::error_code ec;
  if (!fs::exists(host.host("/dev/nvidiactl"), ec)) {
    throw Error(Errc::not_found,
                "GPU hook: NVIDIA_VISIBLE_DEVICES is set, but this node has no "
                "NVIDIA driver (/dev/nvidiactl is missing)",
                "run on a GPU node, or set NVIDIA_VISIBLE_DEVICES=void");
  }
  auto gpus = selected_gpus(host, visible->second, env);
  for (const char* node : {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"}) {
    add_if_exists(plan, host, node, false);
  }
  std::string ids;
  for (const auto& g : gpus) {
    add_if_exists(plan, host, "/dev/nvidia" + std::to_string(g.minor), false);
    ids += (ids.empty() ? "" : ",") + std::to_string(g.index);
  }
  bool graphics = caps.find("graphics") != std::string::npos ||
                  caps.find("display") != std::string::npos ||
                  caps.find("all") != std::string::npos;
  if (graphics) add_if_exists(plan, host, "/dev/nvidia-modeset", false);

  const std::string version = driver_version(host);
  const auto dirs = library_dirs(host);
  std::vector<std::string> lib_dirs_used;
  for (const auto& prefix : gpu_library_prefixes(caps)) {
    std::string lib = find_library(host, dirs, prefix, version);
    if (lib.empty()) continue;
    plan.binds.push_back({host.host(lib).string(), lib, true});
    lib_dirs_used.push_back(fs::path(lib).parent_path().string());
  }
  std::vector<std::string> bins = {"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced"};
  if (caps.find("compute") != std::string::npos || caps.find("all") != std::string::npos) {
    bins.insert(bins.end(), {"nvidia-cuda-mps-control", "nvidia-cuda-mps-server"});
  }
  const auto tool_dirs = driver_tool_dirs(lib_dirs_used);
  for (const auto& b : bins) {
    std::string tool = find_driver_tool(host, tool_dirs, b);
    if (!tool.empty()) plan.binds.push_back({host.host(tool).string(), "/usr/bin/" + b, true});
  }
  if (!version.empty()) add_if_exists(plan, host, "/lib/firmware/nvidia/" + version, true);
  plan.env["NVIDIA_VISIBLE_DEVICES"] = ids.empty() ? "none" : ids;
  plan.run_ldconfig = true;
  return plan;
}

HookPlan plan_infiniband(const HostView& host, const Environment& env) {
  HookPlan plan;
  std::string visible = env_or(env, "MELLANOX_VISIBLE_DEVICES", "");
  if (visible.empty() || visible == "void") return plan;
  std::vector<std::string> devices;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(host.host("/sys/class/infiniband"), ec)) {
    devices.push_back(e.path().filename().string());
  }
  std::sort(devices.begin(), devices.end());
  std::vector<std::string> chosen;
  if (visible == "all") {
    chosen = devices;
  } else if (visible != "none") {
    for (const auto& id : split_list(visible, ',')) {
      bool by_index = is_number(id) && std::stoul(id) < devices.size();
      bool by_name = std::find(devices.begin(), devices.end(), id) != devices.end();
      if (!by_index && !by_name) {
        throw Error(Errc::invalid_argument,
                    "InfiniBand hook: MELLANOX_VISIBLE_DEVICES names '" + id +
                        "', but this node has " + std::to_string(devices.size()) +
                        " RDMA device(s)",
                    "use an index below that, a name from /sys/class/infiniband, or all");
      }
      chosen.push_back(by_name ? id : devices[std::stoul(id)]);
    }
  }
  plan.tmpfs = {"/sys/class/infiniband", "/sys/class/infiniband_verbs"};
  add_if_exists(plan, host, "/dev/infiniband/rdma_cm", false);
  add_if_exists(plan, host, "/sys/class/infiniband_verbs/abi_version", true);
  for (const auto& dev : chosen) {
    fs::path link = host.host("/sys/class/infiniband/" + dev);
    plan.symlinks.push_back({"/sys/class/infiniband/" + dev, fs::read_symlink(link, ec).string()});
    for (const auto& v : fs::directory_iterator(link / "device/infiniband_verbs", ec)) {
      std::string uverbs = v.path().filename().string();
      add_if_exists(plan, host, "/dev/infiniband/" + uverbs, false);
      fs::path verbs_link = host.host("/sys/class/infiniband_verbs/" + uverbs);
      plan.symlinks.push_back(
          {"/sys/class/infiniband_verbs/" + uverbs, fs::read_symlink(verbs_link, ec).string()});
    }
  }
  return plan;
}

HookPlan plan_pmix(const HostView& host, const Environment& env) {
  HookPlan plan;
  for (const char* var : {"PMIX_SERVER_TMPDIR", "PMIX_SYSTEM_TMPDIR"}) {
    std::string dir = env_or(env, var, "");
    if (!dir.empty() && dir[0] == '/' && dir.find("..") == std::string::npos) {
      add_if_exists(plan, host, dir, false);
    }
  }
  if (!env.contains("PMIX_SERVER_URI2") && !env.contains("PMIX_SERVER_URI3") &&
      !env.contains("PMIX_SERVER_URI4") && !env.contains("PMIX_SERVER_URI41") &&
      !env.contains("PMIX_NAMESPACE")) {
    return plan;
  }
  // Slurm's PMIx plugin names a folder in its TmpFS as the job's PMIx
  // tmpdir, and OpenMPI makes its session directory (shared-memory backing
  // files included) there: the tasks of a node must share the host's.
  std::string tmpfs = host.slurm_tmpfs;
  if (auto n = tmpfs.find("%n"); n != std::string::npos) {
    tmpfs.replace(n, 2, env_or(env, "SLURMD_NODENAME", ""));
  }
  if (env.contains("SLURM_JOB_ID") && !tmpfs.empty() && tmpfs[0] == '/' &&
      tmpfs.find("..") == std::string::npos) {
    add_if_exists(plan, host, tmpfs, false);
  }
  // The image's PMIx may be another version than Slurm's. The server lists
  // the transports and security modules it offers (PMIX_PTL_MODULE,
  // PMIX_SECURITY_MODE): the client is held to those, as Pyxis does. Of the
  // data stores, the shared-memory ones have layouts that change between
  // versions, so the client asks the server (hash) whenever it offers that.
  auto hold_to = [&](const char* server_list, const char* client_var) {
    std::string offered = env_or(env, server_list, "");
    if (!offered.empty() && !env.contains(client_var)) plan.env[client_var] = offered;
  };
  hold_to("PMIX_PTL_MODULE", "PMIX_MCA_ptl");
  hold_to("PMIX_SECURITY_MODE", "PMIX_MCA_psec");
  std::string stores = env_or(env, "PMIX_GDS_MODULE", "");
  if (!env.contains("PMIX_MCA_gds")) {
    bool hash = stores.empty() || ("," + stores + ",").find(",hash,") != std::string::npos;
    plan.env["PMIX_MCA_gds"] = hash ? "hash" : stores;
  }
  return plan;
}

}  // namespace deepops
