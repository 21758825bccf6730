// spank_deepops.so: the SPANK callbacks. Thin on purpose: option parsing is
// in job_options.cpp; on the nodes, the work is deepops-keeper's, run as the
// job's user (root/step_keeper.cpp starts it); tasks join its container.
#include <dlfcn.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "deepops/container.hpp"
#include "deepops/error.hpp"
#include "deepops/hooks.hpp"
#include "identity.hpp"
#include "job_options.hpp"
#include "keeper_protocol.hpp"
#include "step_keeper.hpp"
#include "step_state.hpp"
#include "task_env.hpp"

extern "C" {
#include <slurm/slurm.h>
#include <slurm/spank.h>
}

// slurmd finds the plugin by these symbols; everything else stays hidden.
#define DEEPOPS_EXPORT __attribute__((visibility("default")))

extern "C" {
DEEPOPS_EXPORT extern const char plugin_name[];
DEEPOPS_EXPORT extern const char plugin_type[];
DEEPOPS_EXPORT extern const unsigned int plugin_version;
DEEPOPS_EXPORT extern const unsigned int spank_plugin_version;
const char plugin_name[] = "deepops";
const char plugin_type[] = "spank";
const unsigned int plugin_version = SLURM_VERSION_NUMBER;
const unsigned int spank_plugin_version = 1;
}

namespace {
using namespace deepops;
using namespace deepops::spank;

struct PluginState {
  ContainerRequest request;
  std::set<std::string> given;  // options on the command line
  PlugstackConfig config;
  StepInfo step;
  std::optional<KeeperReport> report;
  uint32_t tasks_exited = 0;  // on this node, for the step's last-task work
};
PluginState g;

// In a task, slurm_error writes to the task's stderr: srun's terminal, or
// the batch job's output file.
void task_error(int task, const std::string& text) {
  if (task == 0) slurm_error("deepops: %s", text.c_str());
}

std::vector<std::string> args_of(int ac, char** av) {
  std::vector<std::string> out;
  for (int i = 0; i < ac; ++i) out.emplace_back(av[i]);
  return out;
}

EnvMap job_env(spank_t sp) {
  char** env = nullptr;
  if (spank_get_item(sp, S_JOB_ENV, &env) != ESPANK_SUCCESS) return {};
  return environment_map(env);
}

int on_option(int val, const char* optarg, int /*remote*/) {
  const auto& options = container_options();
  if (val < 0 || static_cast<size_t>(val) >= options.size()) return -1;
  try {
    apply_option(g.request, options[val].name, optarg, process_env_lookup());
    g.given.insert(options[val].name);
    return 0;
  } catch (const Error& e) {
    slurm_error("%s", e.describe().c_str());
    return -1;
  }
}

bool is_container_step(uint32_t step_id) {
  return step_id != SLURM_EXTERN_CONT && step_id != SLURM_INTERACTIVE_STEP;
}

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

// Our programs: beside the plugin (a build tree, or a test lab's copy), else
// where the package installs them.
std::string libexec_program(const char* name) {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&slurm_spank_init), &self) && self.dli_fname) {
    std::string beside = self.dli_fname;
    beside = beside.substr(0, beside.rfind('/') + 1) + name;
    if (access(beside.c_str(), X_OK) == 0) return beside;
  }
  return std::string(DEEPOPS_LIBEXEC_DIR "/") + name;
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

extern "C" {

DEEPOPS_EXPORT int slurm_spank_init(spank_t sp, int ac, char** av) {
  try {
    g.config = parse_plugstack_args(args_of(ac, av));
  } catch (const Error& e) {
    slurm_error("deepops: %s", e.describe().c_str());
    return -1;
  }
  const spank_context_t ctx = spank_context();
  if (ctx == S_CTX_ALLOCATOR && !g.config.sbatch_support) return 0;
  if (ctx != S_CTX_LOCAL && ctx != S_CTX_REMOTE && ctx != S_CTX_ALLOCATOR) return 0;
  if (ctx == S_CTX_REMOTE) {
    for (const auto& note : g.config.notes) slurm_info("deepops: %s", note.c_str());
  }
  const auto& options = container_options();
  for (size_t i = 0; i < options.size(); ++i) {
    spank_option opt{};
    opt.name = const_cast<char*>(options[i].name);
    opt.arginfo = const_cast<char*>(options[i].arginfo);
    opt.usage = const_cast<char*>(options[i].usage);
    opt.has_arg = options[i].arginfo ? 1 : 0;
    opt.val = static_cast<int>(i);
    opt.cb = on_option;
    if (spank_option_register(sp, &opt) != ESPANK_SUCCESS) {
      slurm_error("deepops: cannot register --%s", options[i].name);
      return -1;
    }
  }
  return 0;
}

DEEPOPS_EXPORT int slurm_spank_init_post_opt(spank_t sp, int, char**) {
  const spank_context_t ctx = spank_context();
  try {
    if (ctx == S_CTX_REMOTE) {
      apply_environment(g.request, g.given, env_lookup(job_env(sp)));
      if (!g.request.entrypoint) g.request.entrypoint = g.config.execute_entrypoint;
      return 0;
    }
    if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR) return 0;
    apply_environment(g.request, g.given, process_env_lookup());
    if (!g.request.wants_container()) return 0;
    char cwd[4096] = {};
    if (!getcwd(cwd, sizeof(cwd) - 1)) return 0;
    validate_on_submit(g.request, cwd);
  } catch (const Error& e) {
    // Remote errors wait for task_init (see LAB.md): failing here would
    // print "launch failed" and exit 0, or drain the node.
    if (ctx == S_CTX_REMOTE) {
      g.report.emplace();
      g.report->error = e.describe();
      return 0;
    }
    slurm_error("deepops: %s", e.describe().c_str());
    return -1;
  }
  return 0;
}

DEEPOPS_EXPORT int slurm_spank_user_init(spank_t sp, int, char**) {
  if (!spank_remote(sp) || g.report || !g.request.wants_container()) return 0;
  uint32_t step = 0;
  spank_get_item(sp, S_JOB_STEPID, &step);
  if (!is_container_step(step)) return 0;
  g.step = gather_step(sp);
  // slurm_spank_log reaches srun's terminal: a long import is not a hang.
  const std::string node = g.step.node;
  uint32_t job = 0;
  spank_get_item(sp, S_JOB_ID, &job);
  // Slurm acts on a cancel only once user_init returns: slurmctld is asked.
  uint32_t nodes = 1;
  spank_get_item(sp, S_JOB_NNODES, &nodes);
  StartWatch watch;
  watch.cancelled = [job, step, helper = libexec_program("deepops-step-state"),
                     conf = slurm_conf_path(g.step),
                     who = g.step.who] { return step_cancelled(helper, conf, who, job, step); };
  watch.every = cancel_check_interval(nodes);
  g.report = start_step_container(
      libexec_program("deepops-keeper"), g.request, g.config, g.step,
      [&node](const std::string& line) {
        slurm_spank_log("deepops: %s: %s", node.c_str(), line.c_str());
      },
      watch);
  if (!g.report->ok)
    slurm_info("deepops: step %s.%s: %s", g.step.job_id.c_str(), g.step.step_id.c_str(),
               g.report->error.c_str());
  return 0;  // never fail user_init: task_init reports it
}

DEEPOPS_EXPORT int slurm_spank_task_init(spank_t sp, int, char**) {
  if (!spank_remote(sp) || !g.report) return 0;
  const KeeperReport& r = *g.report;
  int task = 0;
  spank_get_item(sp, S_TASK_ID, &task);
  if (!r.ok) {
    task_error(task, r.error);
    return -1;
  }
  if (task == 0 && !r.notice.empty()) {
    std::fprintf(stderr, "deepops: %s: %s\n", g.step.node.c_str(), r.notice.c_str());
  }
  if (task == 0 && !r.log.empty()) std::fputs(r.log.c_str(), stderr);
  try {
    set_task_env(sp, r);
    prctl(PR_SET_DUMPABLE, 1);  // Slurm's uid switch cleared it; uid_map needs it
    enter_container(r.keeper, r.workdir, r.workdir_required, r.id_call_filter, r.container);
  } catch (const Error& e) {
    task_error(task, e.describe());
    return -1;
  }
  return 0;
}

// The container is stopped (and with --container-save, saved) when the
// node's last task ends, not in `exit`: Slurm SIGKILLs the step's processes
// (proctrack) between the two, and the keeper would then leave its record
// and what the entrypoint or hooks started to chance. And slurmstepd tells
// srun that a task ended only after task_exit returns, so the saved image
// exists when srun returns and the script's next step can start from it.
// `exit` stops a keeper still there (a step whose tasks never started).
DEEPOPS_EXPORT int slurm_spank_task_exit(spank_t sp, int, char**) {
  if (!spank_remote(sp) || !g.report) return 0;
  uint32_t local_tasks = 0;
  if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &local_tasks) != ESPANK_SUCCESS) return 0;
  if (++g.tasks_exited < local_tasks) return 0;
  for (const auto& line :
       stop_step_container(libexec_program("deepops-keeper"), *g.report, g.step)) {
    slurm_info("deepops: %s", line.c_str());
  }
  g.report.reset();
  return 0;
}

DEEPOPS_EXPORT int slurm_spank_exit(spank_t sp, int, char**) {
  if (!spank_remote(sp) || !g.report) return 0;
  for (const auto& line :
       stop_step_container(libexec_program("deepops-keeper"), *g.report, g.step)) {
    slurm_info("deepops: %s", line.c_str());
  }
  g.report.reset();
  return 0;
}

DEEPOPS_EXPORT int slurm_spank_job_epilog(spank_t sp, int ac, char** av) {
  PlugstackConfig config;
  try {
    config = parse_plugstack_args(args_of(ac, av));
  } catch (const Error&) {
    return 0;  // reported where it matters, when srun loads the plugin
  }
  if (!config.job_scope) return 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint32_t job = 0;
  if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
      spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS) {
    return 0;
  }
  spank_get_item(sp, S_JOB_GID, &gid);
  const char* node = std::getenv("SLURMD_NODENAME");  // slurmd sets it for the epilog
  for (const auto& line :
       remove_job_containers(libexec_program("deepops-keeper"), identity_of(uid, gid),
                             std::to_string(job), node ? node : "", config)) {
    slurm_info("deepops: %s", line.c_str());
  }
  return 0;
}

}  // extern "C"
