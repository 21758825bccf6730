// spank_deepops.so: the SPANK callbacks. Thin on purpose: option parsing is
// in job_options.cpp; on the nodes, the work is deepops-keeper's, run as the
// job's user (root/step_keeper.cpp starts it); tasks join its container.
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "container/container.hpp"
#include "identity.hpp"
#include "job_options.hpp"
#include "keeper_protocol.hpp"
#include "slurmstepd_step.hpp"
#include "step_keeper.hpp"
#include "util/error.hpp"

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

int on_option(int val, const char* optarg, int /*remote*/) {
  const auto& options = container_options();
  if (val < 0 || static_cast<size_t>(val) >= options.size()) return -1;
  try {
    apply_option(g.request, options[val].name, optarg, process_env_lookup());
    g.given.insert(options[val].name);
    return 0;
  } catch (const std::exception& e) {
    slurm_error("%s", describe_exception(e).c_str());
    return -1;
  }
}

bool is_container_step(uint32_t step_id) {
  return step_id != SLURM_EXTERN_CONT && step_id != SLURM_INTERACTIVE_STEP;
}

}  // namespace

extern "C" {

DEEPOPS_EXPORT int slurm_spank_init(spank_t sp, int ac, char** av) {
  try {
    g.config = parse_plugstack_args(args_of(ac, av));
  } catch (const std::exception& e) {
    slurm_error("deepops: %s", describe_exception(e).c_str());
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
  } catch (const std::exception& e) {
    // Remote errors wait for task_init (spank/README.md): failing here would
    // print "launch failed" and exit 0, or drain the node.
    if (ctx == S_CTX_REMOTE) {
      g.report.emplace();
      g.report->error = describe_exception(e);
      return 0;
    }
    slurm_error("deepops: %s", describe_exception(e).c_str());
    return -1;
  }
  return 0;
}

DEEPOPS_EXPORT int slurm_spank_user_init(spank_t sp, int, char**) {
  if (!spank_remote(sp) || g.report || !g.request.wants_container()) return 0;
  uint32_t step = 0;
  spank_get_item(sp, S_JOB_STEPID, &step);
  if (!is_container_step(step)) return 0;
  try {
    g.step = gather_step(sp);
  } catch (const std::exception& e) {
    g.report.emplace();
    g.report->error = describe_exception(e);
    return 0;
  }
  // slurm_spank_log reaches srun's terminal: a long import is not a hang.
  const std::string node = g.step.node;
  // Slurm acts on a cancel only once user_init returns: slurmctld is asked.
  const StartWatch watch = start_watch(sp, g.step);
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
  } catch (const std::exception& e) {
    task_error(task, describe_exception(e));
    return -1;
  }
  return 0;
}

// Stops this node's container of the step (saving it with
// --container-save), then has the site's importer release its image.
static void stop_and_release() {
  const std::string keeper = libexec_program("deepops-keeper");
  for (const auto& line : stop_step_container(keeper, *g.report, g.step)) {
    slurm_info("deepops: %s", line.c_str());
  }
  for (const auto& line : release_step_image(keeper, *g.report, g.request, g.config, g.step)) {
    slurm_info("deepops: %s", line.c_str());
  }
  g.report.reset();
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
  stop_and_release();
  return 0;
}

DEEPOPS_EXPORT int slurm_spank_exit(spank_t sp, int, char**) {
  if (!spank_remote(sp) || !g.report) return 0;
  stop_and_release();
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
