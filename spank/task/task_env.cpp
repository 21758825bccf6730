#include "task_env.hpp"

#include <cstdlib>
#include <memory>
#include <type_traits>

extern "C" {
#include <slurm/slurm.h>
}

namespace deepops::spank {

std::string nth_host(const std::string& nodelist, unsigned n) {
  std::unique_ptr<std::remove_pointer_t<hostlist_t>, decltype(&slurm_hostlist_destroy)> hl(
      slurm_hostlist_create(nodelist.c_str()), &slurm_hostlist_destroy);
  if (!hl) return "";
  std::string out;
  for (unsigned i = 0; i <= n; ++i) {
    std::unique_ptr<char, decltype(&free)> host(slurm_hostlist_shift(hl.get()), &free);
    if (!host) return "";
    out = host.get();
  }
  return out;
}

std::string first_host(const std::string& nodelist) {
  std::string host = nth_host(nodelist, 0);
  return host.empty() ? nodelist : host;
}

EnvMap pytorch_env(const EnvMap& task_env, bool pytorch_image) {
  if (!pytorch_image) return {};
  auto get = [&](const char* k) {
    auto it = task_env.find(k);
    return it == task_env.end() ? std::string() : it->second;
  };
  EnvMap out;
  if (auto v = get("SLURM_PROCID"); !v.empty()) out["RANK"] = v;
  if (auto v = get("SLURM_LOCALID"); !v.empty()) out["LOCAL_RANK"] = v;
  if (auto v = get("SLURM_STEP_NUM_TASKS"); !v.empty()) {
    out["WORLD_SIZE"] = v;
  } else if (auto n = get("SLURM_NTASKS"); !n.empty()) {
    out["WORLD_SIZE"] = n;
  }
  if (auto v = get("SLURM_LAUNCH_NODE_IPADDR"); !v.empty()) out["MASTER_ADDR"] = v;
  std::string nodes = get("SLURM_STEP_NODELIST");
  if (nodes.empty()) nodes = get("SLURM_JOB_NODELIST");
  if (!nodes.empty()) out["MASTER_ADDR"] = first_host(nodes);
  // One port per job, the same on every node, clear of the ephemeral range.
  long job = std::strtol(get("SLURM_JOB_ID").c_str(), nullptr, 10);
  out["MASTER_PORT"] = std::to_string(20000 + job % 10000);
  return out;
}

}  // namespace deepops::spank
