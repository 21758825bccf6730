#include "slurmstepd_step.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "container/container.hpp"
#include "container/hooks.hpp"
#include "identity.hpp"
#include "step_state.hpp"
#include "task_env.hpp"

extern "C" {
#include <slurm/slurm.h>
}

namespace deepops::spank {
namespace {

// slurm.conf's value with "%n" (node) and "%h" (host) expanded.
std::string node_path(const char* value, const std::string& node) {
  std::string out = value ? value : "";
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  for (auto [key, with] : {std::pair{"%n", node}, std::pair{"%h", std::string(host)}}) {
    for (size_t at; (at = out.find(key)) != std::string::npos;) out.replace(at, 2, with);
  }
  return out;
}

// slurmstepd has slurm.conf loaded, in libslurmfull's slurm_conf: reading it
// costs nothing, where slurm_load_ctl_conf() would ask slurmctld.
void read_slurm_conf(StepInfo& s) {
  auto* conf = static_cast<const slurm_conf_t*>(dlsym(RTLD_DEFAULT, "slurm_conf"));
  if (!conf) return;
  s.slurmd_spool_dir = node_path(conf->slurmd_spooldir, s.node);
  s.tmp_fs = node_path(conf->tmp_fs, s.node);
}

// slurm.conf's path, for the helper's libslurm. slurmstepd runs with an
// emptied environment and got its configuration from slurmd, so: the path it
// knows, if it is a file; else the job's SLURM_CONF (the helper runs as the
// job's user and answers only about that user's step: a wrong file can only
// end the user's own start); else a configless slurmd's cached copy; else
// unset, for libslurm's default.
std::string slurm_conf_path(const StepInfo& step) {
  auto readable = [](const std::string& p) { return !p.empty() && access(p.c_str(), R_OK) == 0; };
  auto* conf = static_cast<const slurm_conf_t*>(dlsym(RTLD_DEFAULT, "slurm_conf"));
  if (conf && conf->slurm_conf && readable(conf->slurm_conf)) return conf->slurm_conf;
  if (auto it = step.job_env.find("SLURM_CONF"); it != step.job_env.end() && readable(it->second)) {
    return it->second;
  }
  if (const std::string cached = step.slurmd_spool_dir + "/conf-cache/slurm.conf";
      !step.slurmd_spool_dir.empty() && readable(cached)) {
    return cached;
  }
  return "";
}

// Whether slurmctld says that the step was cancelled or its job ended. Asked
// by a program of ours, not here: slurmstepd holds libslurm's authentication
// lock while user_init runs (24.11, 26.05), and an RPC from this process
// would end the step (deepops-step-state says more). When slurmctld cannot
// be asked, the step was not cancelled.
bool step_cancelled(const std::string& helper, const std::string& conf, const UserIdentity& who,
                    uint32_t job_id, uint32_t step_id) {
  constexpr std::chrono::seconds kAskAtMost{20};
  return ask_step_state(helper, conf, who, job_id, step_id, kAskAtMost) == StepState::ended;
}

// How often a node asks slurmctld while its start waits: every 5 s for up
// to 64 nodes, then less often, so that a job of any size costs slurmctld at
// most about 13 job and step queries a second (capped at a minute).
std::chrono::milliseconds cancel_check_interval(uint32_t nodes) {
  constexpr uint32_t kNodesPerInterval = 64;
  const uint32_t intervals =
      std::max<uint32_t>(1, (nodes + kNodesPerInterval - 1) / kNodesPerInterval);
  return std::min<std::chrono::milliseconds>(std::chrono::seconds(5) * intervals,
                                             std::chrono::seconds(60));
}

}  // namespace

EnvMap job_env(spank_t sp) {
  char** env = nullptr;
  if (spank_get_item(sp, S_JOB_ENV, &env) != ESPANK_SUCCESS) return {};
  return environment_map(env);
}

StepInfo gather_step(spank_t sp) {
  StepInfo s;
  uint32_t job = 0, step = 0;
  spank_get_item(sp, S_JOB_UID, &s.uid);
  spank_get_item(sp, S_JOB_GID, &s.gid);
  spank_get_item(sp, S_JOB_ID, &job);
  spank_get_item(sp, S_JOB_STEPID, &step);
  s.job_id = std::to_string(job);
  s.batch = step == SLURM_BATCH_SCRIPT;
  s.step_id = s.batch ? "batch" : std::to_string(step);
  s.job_env = job_env(sp);
  auto get = [&](const char* k) {
    auto it = s.job_env.find(k);
    return it == s.job_env.end() ? std::string() : it->second;
  };
  // This node's Slurm name: slurmstepd's environment is scrubbed, and the
  // job's SLURMD_NODENAME may be the batch node's, inherited by an srun.
  uint32_t node_id = 0;
  spank_get_item(sp, S_JOB_NODEID, &node_id);
  std::string nodes = get("SLURM_STEP_NODELIST");
  if (nodes.empty() || s.batch) nodes = get("SLURM_JOB_NODELIST");
  s.node = nth_host(nodes, s.batch ? 0 : node_id);
  if (s.node.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    s.node = host;
  }
  s.cwd = !get("PWD").empty() ? get("PWD") : get("SLURM_SUBMIT_DIR");
  int argc = 0;
  char** argv = nullptr;
  if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) == ESPANK_SUCCESS) {
    for (int i = 0; i < argc; ++i) s.argv.emplace_back(argv[i]);
  }
  s.who = current_identity(s.uid, s.gid);
  read_slurm_conf(s);
  return s;
}

StartWatch start_watch(spank_t sp, const StepInfo& step) {
  uint32_t job = 0, step_id = 0, nodes = 1;
  spank_get_item(sp, S_JOB_ID, &job);
  spank_get_item(sp, S_JOB_STEPID, &step_id);
  spank_get_item(sp, S_JOB_NNODES, &nodes);
  StartWatch watch;
  watch.cancelled = [job, step_id, helper = libexec_program("deepops-step-state"),
                     conf = slurm_conf_path(step),
                     who = step.who] { return step_cancelled(helper, conf, who, job, step_id); };
  watch.every = cancel_check_interval(nodes);
  return watch;
}

void set_task_env(spank_t sp, const KeeperReport& r) {
  for (const auto& name : r.env.unset) spank_unsetenv(sp, name.c_str());
  for (const auto& [k, v] : r.env.set) spank_setenv(sp, k.c_str(), v.c_str(), 1);
  const EnvMap task_env = job_env(sp);
  for (const auto& [k, v] : pytorch_env(task_env, r.pytorch)) {
    spank_setenv(sp, k.c_str(), v.c_str(), 1);
  }
  // Slurm sets each task's PMIx variables after the container started: the
  // client's transports, security and data store follow them here.
  for (const auto& [k, v] : plan_pmix(HostView{}, task_env).env) {
    spank_setenv(sp, k.c_str(), v.c_str(), 1);
  }
}

std::string libexec_program(const char* name) {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&slurm_spank_init), &self) && self.dli_fname) {
    std::string beside = self.dli_fname;
    beside = beside.substr(0, beside.rfind('/') + 1) + name;
    if (access(beside.c_str(), X_OK) == 0) return beside;
  }
  return std::string(DEEPOPS_LIBEXEC_DIR "/") + name;
}

}  // namespace deepops::spank
