// The node side of a containerised step: a keeper forked from slurmstepd
// holds the container; tasks join it. See spank/README.md for the flow and
// ../shared/LAB.md ("SPANK facts") for why each step is done so.
#include "step_container.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>
#include <type_traits>

#include "deepops/container.hpp"
#include "deepops/container_store.hpp"
#include "deepops/image_cache.hpp"
#include "deepops/image_ref.hpp"
#include "deepops/importer.hpp"
#include "deepops/mirrors.hpp"
#include "deepops/passwd.hpp"
#include "deepops/settings.hpp"
#include "deepops/unique_fd.hpp"
#include "privileges.hpp"
#include "slurm/slurm.h"
#include "step_record.hpp"

extern char** environ;

namespace deepops::spank {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ------------------------------------------------------------ child processes

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

int wait_child(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

Errc errc_named(const std::string& name) {
  for (Errc c : {Errc::invalid_argument, Errc::not_found, Errc::permission_denied, Errc::auth,
                 Errc::network, Errc::corrupt, Errc::no_space, Errc::busy}) {
    if (name == to_string(c)) return c;
  }
  return Errc::internal;
}

json error_json(const Error& e) {
  return {{"ok", false}, {"error", e.describe()}, {"code", to_string(e.code())}};
}

// ------------------------------------------------------- the keeper's stop

// slurmstepd sends SIGTERM to the keeper's process group when the job is
// cancelled before the container is ready: the import and the hooks die of
// it, and the keeper, which only notes it, cleans up after them and exits.
volatile sig_atomic_t g_stop_requested = 0;

void note_stop(int) { g_stop_requested = 1; }

void throw_if_stopped() {
  if (g_stop_requested) throw Error(Errc::internal, "the start was stopped: the job was cancelled");
}

// Runs `body` in a forked child (as the job's user, when `as` is set) and
// returns what it returned; an Error it throws comes back as an Error. Used
// for work that must not run in slurmstepd itself: it is multithreaded and
// root, and imports start threads of their own.
// `before_reap`, when set, is called with the child's pid once it is dead
// and before it is reaped (the pid is still its own).
std::string run_in_child(const std::optional<UserIdentity>& as,
                         const std::function<std::string()>& body,
                         const std::function<void(pid_t)>& before_reap = {}) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("pipe", errno);
  UniqueFd r(fds[0]), w(fds[1]);
  pid_t pid = fork();
  if (pid < 0) throw sys_error("fork", errno);
  if (pid == 0) {
    r.reset();
    json out;
    try {
      if (as) become_user(*as);
      out = {{"ok", true}, {"value", body()}};
    } catch (const Error& e) {
      out = error_json(e);
    } catch (const std::exception& e) {
      out = error_json(Error(Errc::internal, e.what()));
    }
    write_all(w.get(), out.dump());
    _exit(out["ok"].get<bool>() ? 0 : 1);
  }
  w.reset();
  std::string text = read_all(r.get());
  if (before_reap) {
    siginfo_t info{};
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    before_reap(pid);
  }
  int status = wait_child(pid);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw Error(Errc::internal, "a helper process died (" + describe_status(status) + ")");
  }
  if (!j.value("ok", false)) {
    throw Error(errc_named(j.value("code", "")), j.value("error", "unknown error"));
  }
  return j.value("value", "");
}

// --------------------------------------------------------------- settings

// Settings come from the admin's files only: job variables must not move
// the cache, data or runtime paths (COMPAT.md). ${VAR} in those files may
// use the user's identity and Slurm's names for the step.
EnvLookup admin_env(const StepInfo& step, const HostUser& user, const PlugstackConfig& config) {
  EnvMap vars = {{"HOME", user.home},
                 {"USER", user.name},
                 {"LOGNAME", user.name},
                 {"UID", std::to_string(step.uid)},
                 {"GID", std::to_string(step.gid)},
                 {"SLURM_JOB_ID", step.job_id},
                 {"SLURM_STEP_ID", step.step_id},
                 {"SLURMD_NODENAME", step.node}};
  if (!config.sysconf_dir.empty()) vars["DEEPOPS_SYSCONF_DIR"] = config.sysconf_dir.string();
  return env_lookup(std::move(vars));
}

fs::path runtime_dir_for(const PlugstackConfig& config, const Settings& settings,
                         const StepInfo& step) {
  if (config.runtime_path.empty()) return settings.runtime_path;
  return config.runtime_path / std::to_string(step.uid);
}

// ------------------------------------------------------------- the image

struct StepImage {
  fs::path squashfs;
  ImageConfig config;
  std::string name;
  std::string notice;  // "imported X in 2.1 s"
};

void progress_line(int fd, const std::string& line) {
  write_all(fd, json{{"progress", line}}.dump() + "\n");
}

// One line for the user, at most every 2 s and at each change of phase.
class ProgressLines {
 public:
  explicit ProgressLines(int fd) : fd_(fd) {}
  void operator()(const ImportProgress& p) {
    using P = ImportProgress::Phase;
    auto now = std::chrono::steady_clock::now();
    if (p.phase == last_phase_ && now - last_ < std::chrono::seconds(2)) return;
    if (p.phase == P::cached || p.phase == P::done) return;  // the report says so
    last_phase_ = p.phase;
    last_ = now;
    char line[512];
    std::snprintf(line, sizeof(line), "importing %s: %.0f/%.0f MB downloaded, %d/%d layers merged",
                  p.image.c_str(), static_cast<double>(p.bytes_downloaded) / 1e6,
                  static_cast<double>(p.bytes_total) / 1e6, p.layers_merged, p.layers);
    progress_line(fd_, line);
  }

 private:
  int fd_;
  ImportProgress::Phase last_phase_ = ImportProgress::Phase::resolving;
  std::chrono::steady_clock::time_point last_{};
};

// Pyxis prints "importing docker image: IMAGE" and "imported docker image:
// IMAGE" on every step with a registry image, and scripts grep for them:
// each step here prints both, the second saying whether the image came
// from the cache or how long its import took.
StepImage import_in_child(const RegistryImage& ref, const std::string& shown,
                          const Settings& settings, int progress_fd) {
  auto started = std::chrono::steady_clock::now();
  progress_line(progress_fd, "importing docker image: " + shown);
  // The import runs in a child that dies of the keeper's SIGTERM (and may be
  // SIGKILLed): its scratch folder in the cache (tmp/<digest>.<pid>) is then
  // removed here, while the dead child still holds its pid.
  auto remove_scratch = [&settings](pid_t child) {
    std::error_code ec;
    const std::string suffix = "." + std::to_string(child);
    for (const auto& e : fs::directory_iterator(settings.cache_path / "tmp", ec)) {
      if (e.path().filename().string().ends_with(suffix)) fs::remove_all(e.path(), ec);
    }
  };
  // SIGTERM stays blocked from before the fork until the child's default is
  // back: none is lost to the keeper's handler in the child.
  sigset_t term, old_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, &old_mask);
  struct Restore {
    const sigset_t& mask;
    ~Restore() { sigprocmask(SIG_SETMASK, &mask, nullptr); }
  } restore{old_mask};
  std::string value = run_in_child(
      std::nullopt,
      [&] {
        signal(SIGTERM, SIG_DFL);
        sigprocmask(SIG_UNBLOCK, &term, nullptr);
        ImportOptions o;
        o.cache = settings.cache_path;
        o.system_caches = settings.system_caches;
        o.limits = settings.import_limits;
        o.registry.allow_http = settings.allow_http;
        o.registry.http.ca_file = settings.ca_file;
        o.mirrors = MirrorConfig::load(MirrorConfig::default_path());
        ProgressLines lines(progress_fd);
        o.progress = [&lines](const ImportProgress& p) { lines(p); };
        ImportResult r = import_image(ref, o);
        return json{{"digest", r.image.manifest_digest},
                    {"squashfs", r.image.squashfs.string()},
                    {"cached", r.from_cache},
                    {"size", r.image.size},
                    {"config", r.image.config.to_json()}}
            .dump();
      },
      remove_scratch);
  json j = json::parse(value);
  StepImage out{j["squashfs"].get<std::string>(), ImageConfig::from_json(j["config"]),
                ref.canonical(), ""};
  if (j["cached"].get<bool>()) {
    progress_line(progress_fd, "imported docker image: " + shown + " (found in the cache)");
  } else {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char detail[128];
    std::snprintf(detail, sizeof(detail), " (%.0f MB in %.1f s)",
                  static_cast<double>(j["size"].get<int64_t>()) / 1e6, s);
    progress_line(progress_fd, "imported docker image: " + shown + detail);
  }
  return out;
}

// A registry that cannot be reached does not stop a step whose image is
// already cached: the cached copy runs, and the user is told.
std::optional<StepImage> cached_fallback(const RegistryImage& ref, const Settings& settings,
                                         const Error& why) {
  if (why.code() != Errc::network) return std::nullopt;
  auto hits = ImageCache(settings.cache_path).lookup(ref.canonical());
  for (const auto& dir : settings.system_caches) {
    if (!hits.empty()) break;
    hits = ImageCache(dir, true).lookup(ref.canonical());
  }
  if (hits.size() != 1) return std::nullopt;
  return StepImage{hits[0].squashfs, hits[0].config, ref.canonical(),
                   "the registry cannot be reached (" + std::string(why.what()) +
                       "); using the cached " + ref.canonical() + " imported " +
                       hits[0].imported_at};
}

// A failed import keeps Pyxis's words first (what users and scripts look
// for), then what went wrong and the fix.
StepImage import_or_cached(const RegistryImage& ref, const std::string& shown,
                           const Settings& settings, int progress_fd) {
  try {
    return import_in_child(ref, shown, settings, progress_fd);
  } catch (const Error& e) {
    throw_if_stopped();
    if (auto cached = cached_fallback(ref, settings, e)) return *cached;
    throw Error(e.code(), "failed to import docker image " + shown + ": " + e.what(), e.hint());
  }
}

StepImage resolve_image(const std::string& image, const Settings& settings, const fs::path& cwd,
                        int progress_fd) {
  auto source = parse_image_source(image);
  if (auto* file = std::get_if<SquashfsFile>(&source)) {
    fs::path p = file->path.is_absolute() ? file->path : cwd / file->path;
    if (access(p.c_str(), R_OK) != 0) {
      throw sys_error("cannot read the image file " + p.string(), errno,
                      "the path must be readable by you on every node of the job");
    }
    auto meta = ImageCache::read_beside(p);
    return {p, meta ? meta->config : ImageConfig{}, image, ""};
  }
  return import_or_cached(std::get<RegistryImage>(source), image, settings, progress_fd);
}

// ------------------------------------------------------------ the keeper

struct KeeperPlan {
  ContainerSpec spec;
  KeeperReport report;  // filled as far as known before the start
  std::optional<NamedContainer> named;
};

void apply_request(ContainerSpec& spec, const ContainerRequest& r, const Settings& settings,
                   const PlugstackConfig& config, const StepInfo& step, bool named) {
  spec.workdir = r.workdir;
  bool writable_default = named || !r.save.empty() || settings.rootfs_writable;
  spec.writable = r.writable.value_or(writable_default);
  spec.remap_root = r.remap_root.value_or(settings.remap_root);
  spec.mount_home = r.mount_home.value_or(settings.mount_home);
  spec.restrict_dev = settings.restrict_dev;
  spec.id_call_filter = settings.seccomp_filter;
  spec.unshare_net = r.unshare_net;
  spec.unshare_ipc = r.unshare_ipc;
  spec.unshare_uts = r.unshare_uts;
  const EnvLookup job = env_lookup(step.job_env);
  spec.mounts = settings.load_mounts(job);
  if (!named) spec.mounts.insert(spec.mounts.end(), r.mounts.begin(), r.mounts.end());
  spec.environ = settings.load_environ(job);
  for (const auto& name : r.env_names) {
    if (auto it = step.job_env.find(name); it != step.job_env.end())
      spec.env.emplace_back(name, it->second);
  }
  spec.runtime_dir = runtime_dir_for(config, settings, step);
  spec.overlay = settings.overlay;
  spec.hooks = settings.hooks();
  spec.host.root = settings.host_root;
  spec.host.library_dirs = settings.driver_library_dirs;
  spec.host.slurm_tmpfs = settings.slurm_tmpfs;
  if (settings.origin.at("SLURM_TMPFS") == "default" && !step.tmp_fs.empty()) {
    spec.host.slurm_tmpfs = step.tmp_fs;
  }
  spec.hook_env = pmix_hook_env(step);
  spec.hold = true;
  if (step.batch && !step.argv.empty()) {
    // The batch script lives in slurmd's spool: the same path inside, read-only.
    MountEntry script;
    script.source = step.argv[0];
    script.target = step.argv[0];
    script.bind = true;
    script.read_only = true;
    script.create = MountEntry::Create::file;
    script.origin = "the batch script";
    spec.mounts.push_back(script);
  }
}

// The container's environment as a change to the step's, computed the way
// run_container computes it (the keeper runs with the step's environment).
EnvMap keeper_environment(const ContainerRequest& r, const StepInfo& step) {
  EnvMap env = step.job_env;
  env["SLURMD_NODENAME"] = step.node;  // as Slurm sets it for each task
  auto listed = [&](const std::string& n) {
    return std::find(r.env_names.begin(), r.env_names.end(), n) != r.env_names.end();
  };
  // The submit host's locale may not exist in the image.
  for (const char* n : {"LANG", "LC_ALL"}) {
    if (!listed(n)) env.erase(n);
  }
  return env;
}

void set_environ(const EnvMap& env) {
  clearenv();
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
}

// Detaches the keeper from slurmstepd's descriptors (the step's sockets and
// pipes must close when slurmstepd closes them) and from its signal state.
void isolate_keeper(int& report_fd) {
  if (report_fd != 3) {
    dup2(report_fd, 3);
    report_fd = 3;
  }
  int devnull = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) dup2(devnull, fd);
  close_range(4, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Its own process group (slurmstepd sets it too, before any signal): what
  // slurmstepd stops when the job is cancelled during the start.
  setpgid(0, 0);
  struct sigaction stop {};
  stop.sa_handler = note_stop;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);  // exec resets it: hooks die of SIGTERM
}

std::optional<NamedContainer> wait_for_running(const ContainerStore& store,
                                               const std::string& name) {
  // Another step holds it and is starting it: wait (bounded) for its keeper.
  for (int i = 0; i < 1200; ++i) {
    throw_if_stopped();
    auto c = store.find(name);
    if (c && c->keeper) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

// --container-workdir, else the image's WORKDIR, else the submit directory
// (tasks fall back to "/" when the image has no such folder).
std::string default_workdir(const std::string& asked, bool required, const ImageConfig& image,
                            const StepInfo& step) {
  if (required) return asked;
  if (!image.working_dir.empty()) return image.working_dir;
  return step.cwd.empty() ? "/" : step.cwd.string();
}

KeeperReport attach_report(const NamedContainer& c, const ContainerRequest& r,
                           const Settings& settings, const StepInfo& step) {
  ContainerSpec spec;
  spec.image = c.config;
  spec.environ = settings.load_environ(env_lookup(step.job_env));
  EnvMap base = keeper_environment(r, step);
  EnvMap env = container_environment(spec, base);
  for (const auto& name : r.env_names) {
    if (auto it = step.job_env.find(name); it != step.job_env.end()) env[name] = it->second;
  }
  if (c.remap_root) env["HOME"] = "/root";
  KeeperReport rep;
  rep.ok = true;
  rep.attached = true;
  rep.keeper = *c.keeper;
  rep.container = "container '" + c.name + "'";
  rep.env = env_delta(step.job_env, env);
  rep.workdir = default_workdir(r.workdir, !r.workdir.empty(), c.config, step);
  rep.workdir_required = !r.workdir.empty();
  rep.remap_root = c.remap_root;
  rep.id_call_filter = settings.seccomp_filter;
  rep.image = c.config;
  return rep;
}

std::string no_container_hint(const std::string& name) {
  return "start it in an earlier step with --container-name=" + name +
         " --container-image=IMAGE (deepops-ctr list --containers shows yours)";
}

// A step that asks for its own namespace (--container-unshare) cannot join a
// running container that shares the host's: Pyxis refuses it, and joining
// silently would give the step the host's network, IPC or hostname.
void check_unshared_as_asked(const NamedContainer& c, const ContainerRequest& r) {
  for (auto [asked, name, what] :
       {std::tuple{r.unshare_net, "net", "network"}, std::tuple{r.unshare_ipc, "ipc", "IPC"},
        std::tuple{r.unshare_uts, "uts", "UTS"}}) {
    if (!asked) continue;
    struct stat theirs {
    }, ours{};
    const std::string ns = std::string("/ns/") + name;
    if (stat(("/proc/" + std::to_string(*c.keeper) + ns).c_str(), &theirs) != 0 ||
        stat(("/proc/self" + ns).c_str(), &ours) != 0) {
      continue;  // the keeper just ended: the attach fails on its own
    }
    if (theirs.st_ino == ours.st_ino) {
      throw Error(Errc::invalid_argument,
                  std::string("--container-unshare=") + name + " requested but container '" +
                      c.name + "' is not in a separate " + what + " namespace",
                  "drop --container-unshare to join it, or start it with that option");
    }
  }
}

// --container-name=JOBID.STEPID names a running unnamed step's container,
// as in Pyxis (within the job only, with container_scope=job): the step
// joins it. `create` refuses it; `no_exec` and a step that has ended fall
// through to the named containers.
std::optional<KeeperReport> plan_step_join(const ContainerRequest& r, const Settings& settings,
                                           const PlugstackConfig& config, const StepInfo& step) {
  const std::string& name = r.name->name;
  if (!is_step_name(name)) return std::nullopt;
  if (config.job_scope && name.substr(0, name.find('.')) != step.job_id) return std::nullopt;
  using M = ContainerRequest::NameMode;
  if (r.name->mode == M::no_exec) return std::nullopt;
  const fs::path dir = runtime_dir_for(config, settings, step);
  auto record = read_step_record(dir / step_record_name(name, step.node));
  if (!record) return std::nullopt;
  if (r.name->mode == M::create) {
    throw Error(Errc::invalid_argument,
                "container '" + name + "' already exists (step " + name + " runs it)",
                "drop :create to join it");
  }
  NamedContainer c;
  c.name = name;
  c.keeper = record->keeper;
  c.remap_root = record->remap_root;
  c.config = record->config;
  check_unshared_as_asked(c, r);
  return attach_report(c, r, settings, step);
}

// Picks what to start for a named container, or returns a report that
// attaches to the one already running.
std::optional<KeeperReport> plan_named(KeeperPlan& plan, const ContainerRequest& r,
                                       const Settings& settings, const PlugstackConfig& config,
                                       const StepInfo& step, int progress_fd) {
  if (auto attach = plan_step_join(r, settings, config, step)) return attach;
  const auto mode = r.name->mode;
  const std::string name = stored_container_name(r.name->name, config.job_scope, step.job_id);
  ContainerStore store(settings.data_path);
  auto found = store.find(name);
  using M = ContainerRequest::NameMode;
  if (found && mode == M::create) {
    throw Error(Errc::invalid_argument, "container '" + r.name->name + "' already exists",
                "drop :create to reuse it, or remove it: deepops-ctr remove " + name);
  }
  if (found && found->running_elsewhere) {
    throw Error(Errc::busy, "container '" + r.name->name + "' is running on another node",
                "named containers live in DATA_PATH (" + settings.data_path.string() +
                    "): make it node-local in deepops.conf, or wait for that step to end");
  }
  if (found && found->keeper) {
    if (mode == M::no_exec) {
      // Pyxis starts a second instance from the same root. Two overlays
      // cannot share one writable layer, so this one reads the running
      // container's writes and keeps its own in memory.
      plan.spec.squashfs = found->squashfs;
      plan.spec.image = found->config;
      plan.spec.image_name = "container '" + r.name->name + "'";
      plan.spec.shared_layer = found->dir / "upper";
      plan.report.notice = "container '" + r.name->name +
                           "' runs in another step: this step (:no_exec) runs its own instance "
                           "of it, whose writes are not kept";
      return std::nullopt;
    }
    check_unshared_as_asked(*found, r);
    return attach_report(*found, r, settings, step);
  }
  if (mode == M::exec) {
    throw Error(Errc::not_found, "container '" + r.name->name + "' is not running",
                ":exec only joins a running container; " + no_container_hint(r.name->name));
  }
  if (!found) {
    if (r.image.empty()) {
      throw Error(Errc::not_found, "there is no container '" + r.name->name + "'",
                  "add --container-image to create it");
    }
    StepImage image = resolve_image(r.image, settings, step.cwd, progress_fd);
    plan.report.notice = image.notice;
    found = store.create(name, image.squashfs, r.image, image.config);
  }
  plan.named = found;
  plan.spec.squashfs = found->squashfs;
  plan.spec.image = found->config;
  plan.spec.image_name = "container '" + r.name->name + "'";
  plan.spec.persistent_dir = found->dir;
  return std::nullopt;
}

[[noreturn]] void keeper_main(int report_fd, const ContainerRequest& r,
                              const PlugstackConfig& config, const StepInfo& step,
                              const UserIdentity& who) {
  isolate_keeper(report_fd);
  try {
    prepare_runtime_path(config.runtime_path, who);
    become_user(who);
    const HostUser user = HostUser::current();
    Settings settings = Settings::load(admin_env(step, user, config));
    set_environ(keeper_environment(r, step));
    KeeperPlan plan;
    if (r.name) {
      if (auto attach = plan_named(plan, r, settings, config, step, report_fd)) {
        write_all(report_fd, attach->to_json());
        _exit(0);
      }
    } else {
      StepImage image = resolve_image(r.image, settings, step.cwd, report_fd);
      plan.report.notice = image.notice;
      plan.spec.squashfs = image.squashfs;
      plan.spec.image = image.config;
      plan.spec.image_name = image.name;
    }
    throw_if_stopped();
    // A second instance of a named container (:no_exec) is one as well.
    const bool named = plan.named.has_value() || plan.spec.shared_layer.has_value();
    if (plan.spec.shared_layer && !r.save.empty()) {
      throw Error(Errc::invalid_argument,
                  "--container-save cannot save a second instance of " + plan.spec.image_name,
                  "save it from the step that runs it, or once that step has ended");
    }
    apply_request(plan.spec, r, settings, config, step, named);
    if (r.entrypoint.value_or(false) && !plan.spec.image.entrypoint.empty()) {
      // Once per node, around the tasks: what it starts and exports is theirs.
      plan.spec.init_entrypoint = plan.spec.image.entrypoint;
    }
    KeeperReport& rep = plan.report;
    rep.container = plan.spec.image_name;
    rep.squashfs = plan.spec.squashfs;
    rep.image = plan.spec.image;
    rep.runtime_dir = plan.spec.runtime_dir;
    if (!r.save.empty()) {
      rep.save_to = fs::path(r.save).is_absolute() ? fs::path(r.save) : step.cwd / r.save;
      if (!plan.named) {
        // The writes must outlive the keeper to be saved: keep them on disk.
        rep.layer_dir =
            settings.data_path / ".save" / (step.job_id + "." + step.step_id + "." + step.node);
        rep.layer_is_temporary = true;
        fs::remove_all(rep.layer_dir);
        fs::create_directories(rep.layer_dir / "upper");
        fs::create_directories(rep.layer_dir / "work");
        plan.spec.persistent_dir = rep.layer_dir;
      } else {
        rep.layer_dir = plan.named->dir;
      }
    }
    std::optional<ContainerStore::RunLock> lock;
    if (plan.named) {
      try {
        lock.emplace(ContainerStore(settings.data_path).lock_for_run(*plan.named));
      } catch (const Error& e) {
        // Another step started it a moment ago: join it once it is ready.
        if (e.code() != Errc::busy || r.name->mode == ContainerRequest::NameMode::no_exec) throw;
        auto running = wait_for_running(ContainerStore(settings.data_path), plan.named->name);
        if (!running) throw;
        write_all(report_fd, attach_report(*running, r, settings, step).to_json());
        _exit(0);
      }
    }
    // An unnamed step's container can be joined by name while it runs
    // (plan_step_join); the folder is opened now, before the keeper leaves
    // the host's paths behind.
    const std::string step_name = step.job_id + "." + step.step_id;
    const std::string record_name = step_record_name(step_name, step.node);
    prune_step_records(plan.spec.runtime_dir, step.node);
    UniqueFd record_dir;
    if (!plan.named && is_step_name(step_name)) {
      mkdir(plan.spec.runtime_dir.c_str(), 0700);  // run_container checks it is private
      record_dir.reset(open(plan.spec.runtime_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    }
    const EnvMap before = step.job_env;
    plan.spec.on_ready = [&](const ReadyContainer& ready) {
      // From here a SIGTERM waits for the hold (run_container), which stops
      // the container on it; one that came before stops the start now.
      sigset_t term;
      sigemptyset(&term);
      sigaddset(&term, SIGTERM);
      sigprocmask(SIG_BLOCK, &term, nullptr);
      throw_if_stopped();
      if (lock) lock->publish_keeper(getpid(), ready.remap_root);
      if (record_dir) {
        write_step_record(
            record_dir.get(), record_name,
            StepRecord{getpid(), process_start_time(getpid()), ready.remap_root, plan.spec.image});
      }
      rep.ok = true;
      rep.keeper = getpid();
      rep.env = env_delta(before, ready.env);
      rep.workdir = default_workdir(ready.workdir, ready.workdir_required, plan.spec.image, step);
      rep.workdir_required = ready.workdir_required;
      rep.remap_root = ready.remap_root;
      rep.id_call_filter = plan.spec.id_call_filter;
      if (r.entrypoint_log) rep.log = ready.init_output;
      write_all(report_fd, rep.to_json());
      close(report_fd);
    };
    int status = run_container(plan.spec);
    if (record_dir) remove_step_record(record_dir.get(), record_name);
    _exit(status);
  } catch (const Error& e) {
    write_all(report_fd, error_json(e).dump());
  } catch (const std::exception& e) {
    write_all(report_fd, error_json(Error(Errc::internal, e.what())).dump());
  }
  _exit(125);
}

bool wait_bounded(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid || (got < 0 && errno == ECHILD)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Whether the keeper has exited, without reaping it: as long as it is not
// reaped, its pid (and so its process group's id) is no one else's.
bool exited_unreaped(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
    return errno == ECHILD;
  }
  return info.si_pid == pid;
}

// The job was cancelled while the keeper (slurmstepd's child, the leader of
// its own process group) was starting: SIGTERM to the group, where the import
// and the hooks die and the keeper cleans up after them; SIGKILL to what is
// left of the group after 10 s, or once the keeper has exited; then the
// keeper is reaped. The report pipe is drained meanwhile: a keeper blocked on
// a full pipe could not exit.
void stop_starting_keeper(pid_t keeper, int report_fd) {
  killpg(keeper, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!exited_unreaped(keeper) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{report_fd, POLLIN, 0};
    char chunk[4096];
    if (poll(&p, 1, 50) > 0 && read(report_fd, chunk, sizeof(chunk)) <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // closed: only wait
    }
  }
  killpg(keeper, SIGKILL);
  wait_child(keeper);
}

}  // namespace

// ------------------------------------------------------------------ public

EnvLookup env_lookup(EnvMap env) {
  return [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

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

std::string read_report(int fd, const ProgressSink& progress) {
  return *read_report_until(fd, progress, {}, std::chrono::milliseconds(0));
}

std::optional<std::string> read_report_until(int fd, const ProgressSink& progress,
                                             const std::function<bool()>& cancelled,
                                             std::chrono::milliseconds every) {
  using Clock = std::chrono::steady_clock;
  auto next_check = Clock::now() + every;
  std::string buffer, report;
  auto take = [&](const std::string& line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("progress")) {
      if (progress && j["progress"].is_string()) progress(j["progress"].get<std::string>());
    } else if (!line.empty()) {
      report = line;
    }
  };
  char chunk[4096];
  for (;;) {
    if (cancelled) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(next_check - Clock::now());
      pollfd p{fd, POLLIN, 0};
      int ready = left.count() > 0 ? poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        if (Clock::now() < next_check) continue;
        if (cancelled()) return std::nullopt;
        next_check = Clock::now() + every;
        continue;
      }
    }
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      take(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
    }
  }
  take(buffer);
  return report;
}

EnvDelta env_delta(const EnvMap& before, const EnvMap& after) {
  EnvDelta d;
  for (const auto& [k, v] : after) {
    auto it = before.find(k);
    if (it == before.end() || it->second != v) d.set[k] = v;
  }
  for (const auto& [k, v] : before) {
    if (!after.count(k)) d.unset.push_back(k);
  }
  return d;
}

std::string KeeperReport::to_json() const {
  json j = {{"ok", ok},
            {"error", error},
            {"keeper", keeper},
            {"attached", attached},
            {"container", container},
            {"notice", notice},
            {"log", log},
            {"set", env.set},
            {"unset", env.unset},
            {"workdir", workdir},
            {"workdir_required", workdir_required},
            {"remap_root", remap_root},
            {"seccomp", id_call_filter},
            {"image", image.to_json()},
            {"squashfs", squashfs.string()},
            {"layer_dir", layer_dir.string()},
            {"layer_is_temporary", layer_is_temporary},
            {"save_to", save_to.string()},
            {"runtime_dir", runtime_dir.string()}};
  return j.dump();
}

// The keeper runs as the job's user, who can make it write anything: a report
// of the wrong shape is an error of the step, never an exception in slurmstepd.
KeeperReport KeeperReport::from_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  KeeperReport r;
  if (j.is_discarded() || !j.is_object()) {
    r.error = "the container's keeper sent no report";
    return r;
  }
  try {
    r.ok = j.value("ok", false);
    r.error = j.value("error", "");
    if (!r.ok) return r;
    if (j.contains("keeper")) {  // a pid: nlohmann's float-to-int conversion would be UB
      const json& k = j["keeper"];
      if (!k.is_number_unsigned() || k.get<uint64_t>() > std::numeric_limits<pid_t>::max()) {
        throw std::invalid_argument("\"keeper\" is not a process id");
      }
      r.keeper = static_cast<pid_t>(k.get<uint64_t>());
    }
    r.attached = j.value("attached", false);
    r.container = j.value("container", "");
    r.notice = j.value("notice", "");
    r.log = j.value("log", "");
    r.env.set = j.value("set", EnvMap{});
    r.env.unset = j.value("unset", std::vector<std::string>{});
    r.workdir = j.value("workdir", "/");
    r.workdir_required = j.value("workdir_required", false);
    r.remap_root = j.value("remap_root", false);
    r.id_call_filter = j.value("seccomp", true);
    if (j.contains("image")) r.image = ImageConfig::from_json(j["image"]);
    r.squashfs = j.value("squashfs", "");
    r.layer_dir = j.value("layer_dir", "");
    r.layer_is_temporary = j.value("layer_is_temporary", false);
    r.save_to = j.value("save_to", "");
    r.runtime_dir = j.value("runtime_dir", "");
  } catch (const std::exception& e) {
    r = KeeperReport{};
    r.error = std::string("the container's keeper sent a malformed report (") + e.what() + ")";
  }
  return r;
}

EnvMap pytorch_env(const EnvMap& task_env, const ImageConfig& image) {
  bool pytorch = std::any_of(image.env.begin(), image.env.end(), [](const std::string& kv) {
    return kv.starts_with("PYTORCH_VERSION=");
  });
  if (!pytorch) return {};
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

EnvMap pmix_hook_env(const StepInfo& step) {
  auto mpi = step.job_env.find("SLURM_MPI_TYPE");
  if (mpi == step.job_env.end() || !mpi->second.starts_with("pmix") ||
      step.slurmd_spool_dir.empty()) {
    return {};
  }
  // Slurm's mpi/pmix: <SlurmdSpoolDir>/pmix.<job>.<step>/ (PMIxCliTmpDirBase unset).
  std::string ns = "slurm.pmix." + step.job_id + "." + step.step_id;
  return {{"PMIX_SERVER_TMPDIR",
           step.slurmd_spool_dir + "/pmix." + step.job_id + "." + step.step_id + "/"},
          {"PMIX_NAMESPACE", ns}};
}

std::string job_scope_prefix(const std::string& job_id) { return "job" + job_id + "."; }

std::string stored_container_name(const std::string& name, bool job_scope,
                                  const std::string& job_id) {
  return job_scope ? job_scope_prefix(job_id) + name : name;
}

KeeperReport start_step_container(const ContainerRequest& request, const PlugstackConfig& config,
                                  const StepInfo& step, const ProgressSink& progress,
                                  const StartWatch& watch) {
  KeeperReport failed;
  try {
    const UserIdentity& who = step.who;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("pipe", errno);
    UniqueFd r(fds[0]), w(fds[1]);
    pid_t pid = fork();
    if (pid < 0) throw sys_error("cannot fork the container's keeper", errno);
    if (pid == 0) {
      r.reset();
      int report_fd = w.release();
      keeper_main(report_fd, request, config, step, who);
    }
    w.reset();
    setpgid(pid, pid);  // as the keeper does: a group of its own before any signal
    auto text = read_report_until(r.get(), progress, watch.cancelled, watch.every);
    if (!text) {
      stop_starting_keeper(pid, r.get());
      const std::string what = !request.image.empty() ? request.image
                               : request.name         ? "container '" + request.name->name + "'"
                                                      : "the container";
      failed.error = "the job was cancelled while " + what +
                     " was starting (its image importing, or hooks running): stopped";
      return failed;
    }
    KeeperReport rep = KeeperReport::from_json(*text);
    // slurmstepd signals the keeper as root when the step ends: that is the
    // child it forked, whatever pid the report (written as the user) names.
    if (rep.ok && !rep.attached && rep.keeper != pid) {
      rep = KeeperReport{};
      rep.error = "the container's keeper reported another process as itself";
    }
    if (!rep.ok) {
      int status = 0;
      if (wait_bounded(pid, std::chrono::seconds(10))) {
        waitpid(pid, &status, WNOHANG);
      } else {
        kill(pid, SIGKILL);
        wait_child(pid);
      }
      if (rep.error.empty() || rep.error == "the container's keeper sent no report") {
        rep.error = "the container's keeper died before it was ready";
      }
      return rep;
    }
    if (rep.attached) wait_child(pid);  // it only looked
    return rep;
  } catch (const Error& e) {
    failed.error = e.describe();
  }
  return failed;
}

std::vector<std::string> stop_step_container(const KeeperReport& report, const StepInfo& step) {
  std::vector<std::string> log;
  if (!report.ok || report.attached) return log;
  kill(report.keeper, SIGTERM);
  if (!wait_bounded(report.keeper, std::chrono::seconds(10))) {
    log.push_back("the container's keeper ignored SIGTERM for 10 s; killed");
    kill(report.keeper, SIGKILL);
    wait_bounded(report.keeper, std::chrono::seconds(5));
  }
  if (report.save_to.empty()) return log;
  try {
    run_in_child(step.who, [&] {
      ContainerSpec spec;
      spec.squashfs = report.squashfs;
      spec.image = report.image;
      spec.image_name = report.container;
      spec.persistent_dir = report.layer_dir;
      spec.runtime_dir = report.runtime_dir;
      export_container(spec, report.save_to);
      if (report.layer_is_temporary) fs::remove_all(report.layer_dir);
      return std::string();
    });
    log.push_back("saved the container to " + report.save_to.string());
  } catch (const Error& e) {
    log.push_back("cannot save the container to " + report.save_to.string() + ": " + e.describe());
  }
  return log;
}

std::vector<std::string> remove_job_containers(uid_t uid, gid_t gid, const std::string& job_id,
                                               const std::string& node,
                                               const PlugstackConfig& config) {
  std::vector<std::string> log;
  try {
    UserIdentity who = identity_of(uid, gid);
    std::string removed = run_in_child(who, [&] {
      const HostUser user = HostUser::current();
      StepInfo step;
      step.uid = uid;
      step.gid = gid;
      step.job_id = job_id;
      step.node = node;
      Settings settings = Settings::load(admin_env(step, user, config));
      ContainerStore store(settings.data_path);
      std::string names;
      for (const auto& c : store.list()) {
        if (!c.name.starts_with(job_scope_prefix(job_id))) continue;
        store.remove(c.name);
        names += " " + c.name;
      }
      return names;
    });
    if (!removed.empty()) log.push_back("removed the job's containers:" + removed);
  } catch (const Error& e) {
    log.push_back("cannot remove the job's containers: " + e.describe());
  }
  return log;
}

}  // namespace deepops::spank
