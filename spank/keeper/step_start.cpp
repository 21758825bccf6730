// deepops-keeper's `start`: finds or imports the step's image, starts its
// container and holds it for the step's tasks, as the job's user. The plugin
// execs it (spank/root/spawn_keeper.cpp) and reads its report; see
// spank/README.md for the flow and why each step is done so.
#include "step_start.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "config/settings.hpp"
#include "container/container.hpp"
#include "container/container_store.hpp"
#include "container/passwd.hpp"
#include "image/image_cache.hpp"
#include "image/importer.hpp"
#include "importer_plugin.hpp"
#include "keeper_io.hpp"
#include "registry/image_ref.hpp"
#include "step_record.hpp"
#include "usecases/containers.hpp"
#include "usecases/images.hpp"
#include "util/env_lookup.hpp"
#include "util/unique_fd.hpp"

namespace deepops::spank {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ------------------------------------------------------- the keeper's stop

// slurmstepd sends SIGTERM to the keeper when the job is cancelled before
// the container is ready: the keeper passes it on to its process group once,
// where the import and the hooks die of it, then cleans up after them and
// exits.
volatile sig_atomic_t g_stop_requested = 0;
pid_t g_keeper_pid = 0;

void note_stop(int sig) {
  // A child forked by the keeper, before its exec or its own handler: it
  // dies of the signal, as it would have without the keeper's handler.
  if (getpid() != g_keeper_pid) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  if (g_stop_requested) return;
  g_stop_requested = 1;
  kill(0, SIGTERM);  // the group, this keeper too: handled here, once
}

void throw_if_stopped() {
  if (g_stop_requested) throw Error(Errc::internal, "the start was stopped: the job was cancelled");
}

// --------------------------------------------------------------- settings

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
  write_line(fd, dump_text(json{{"progress", line}}));
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

// Pyxis's second line, saying whether the image came from the cache or how
// long its import took.
void imported_line(int progress_fd, const std::string& shown, bool cached, int64_t size,
                   std::chrono::steady_clock::time_point started) {
  if (cached) {
    progress_line(progress_fd, "imported docker image: " + shown + " (found in the cache)");
    return;
  }
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char detail[128];
  std::snprintf(detail, sizeof(detail), " (%.0f MB in %.1f s)", static_cast<double>(size) / 1e6, s);
  progress_line(progress_fd, "imported docker image: " + shown + detail);
}

// Pyxis prints "importing docker image: IMAGE" and "imported docker image:
// IMAGE" on every step with a registry image, and scripts grep for them:
// each step here prints both.
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
  std::string value = run_in_child(
      [&] {
        ImportRequest request(ref);
        request.credentials = CredentialFiles::from_environment(process_env_lookup());
        ProgressLines lines(progress_fd);
        request.progress = [&lines](const ImportProgress& p) { lines(p); };
        const ImportResult r = *find_or_import(request, settings).import;
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
  imported_line(progress_fd, shown, j["cached"].get<bool>(), j["size"].get<int64_t>(), started);
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

// The site's importer (plugstack.conf importer=) instead of the runtime's
// import: its squashfs, with the image's metadata beside it if it wrote any.
StepImage import_through_importer(const std::string& image, const Settings& settings,
                                  const PlugstackConfig& config, const StepInfo& step,
                                  int progress_fd) {
  progress_line(progress_fd, "importing docker image: " + image);
  const auto started = std::chrono::steady_clock::now();
  const fs::path squashfs = importer_get(config, step, settings, image);
  const FoundImage file = read_squashfs_file(SquashfsFile{squashfs}, step.cwd);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char took[64];
  std::snprintf(took, sizeof(took), " (by the site's importer in %.1f s)", seconds);
  progress_line(progress_fd, "imported docker image: " + image + took);
  return {file.squashfs, file.config, image, ""};
}

// A local daemon's image (dockerd://, podman://), saved by its client as the
// user: Pyxis's two lines too (Pyxis prints them for its dockerd:// images),
// and the progress of a long save between them.
StepImage import_from_daemon(const ImageSource& source, const std::string& image,
                             const Settings& settings, int progress_fd) {
  const auto started = std::chrono::steady_clock::now();
  progress_line(progress_fd, "importing docker image: " + image);
  ImportRequest request(source);
  ProgressLines lines(progress_fd);
  request.progress = [&lines](const ImportProgress& p) { lines(p); };
  FoundImage file;
  try {
    file = find_or_import(request, settings);
  } catch (const Error& e) {
    throw_if_stopped();  // a cancelled step's save dies of its SIGTERM: no import error
    std::string why = e.what();
    for (const std::string& name : {describe(source), image}) {  // the image named once
      if (why.starts_with(name + ": ")) {
        why.erase(0, name.size() + 2);
        break;
      }
    }
    throw Error(e.code(), "failed to import docker image " + image + ": " + why, e.hint());
  }
  if (file.import) {
    imported_line(progress_fd, image, file.import->from_cache, file.import->image.size, started);
  }
  return {file.squashfs, file.config, image, ""};
}

StepImage resolve_image(const std::string& image, const Settings& settings,
                        const PlugstackConfig& config, const StepInfo& step, int progress_fd) {
  const fs::path& cwd = step.cwd;
  if (uses_importer(config, image)) {
    return import_through_importer(image, settings, config, step, progress_fd);
  }
  const ImageSource source = parse_image_source(image);
  if (const auto* ref = std::get_if<RegistryImage>(&source)) {
    return import_or_cached(*ref, image, settings, progress_fd);
  }
  if (std::holds_alternative<OfflineImage>(source)) {
    throw Error(
        Errc::invalid_argument,
        "--container-image=" + image + ": offline images are imported first",
        "deepops-ctr import " + image + ", then give the .sqsh file (deepops-ctr import -o)");
  }
  if (std::holds_alternative<DaemonImage>(source)) {
    return import_from_daemon(source, image, settings, progress_fd);
  }
  ImportRequest request(source);  // a squashfs file
  request.cwd = cwd;
  const FoundImage file = find_or_import(request, settings);
  return {file.squashfs, file.config, image, ""};
}

// ------------------------------------------------------------ the keeper

struct KeeperPlan {
  ContainerSpec spec;
  KeeperReport report;  // filled as far as known before the start
  std::optional<NamedContainer> named;
};

// The settings' part of the spec (container_spec), then the step's options.
void apply_request(ContainerSpec& spec, const ContainerRequest& r, const Settings& settings,
                   const PlugstackConfig& config, const StepInfo& step, bool named) {
  const FoundImage image{spec.squashfs, spec.image, spec.image_name, std::nullopt};
  ContainerSpec base = container_spec(settings, image, env_lookup(step.job_env));
  base.persistent_dir = spec.persistent_dir;
  base.shared_layer = spec.shared_layer;
  spec = std::move(base);
  // A step's tasks already share its keeper's mount; a server outliving the
  // step would outlive its cgroup, which Slurm kills at the step's end.
  spec.image_mount_linger = std::chrono::seconds(0);
  spec.workdir = r.workdir;
  spec.writable = r.writable.value_or(named || !r.save.empty() || settings.rootfs_writable);
  spec.remap_root = r.remap_root.value_or(settings.remap_root);
  spec.mount_home = r.mount_home.value_or(settings.mount_home);
  spec.unshare_net = r.unshare_net;
  spec.unshare_ipc = r.unshare_ipc;
  spec.unshare_uts = r.unshare_uts;
  // As Pyxis: a named container's start takes the step's mounts too; only a
  // step attaching to a running one ignores them (that path ends earlier).
  spec.mounts.insert(spec.mounts.end(), r.mounts.begin(), r.mounts.end());
  for (const auto& name : r.env_names) {
    if (auto it = step.job_env.find(name); it != step.job_env.end())
      spec.env.emplace_back(name, it->second);
  }
  spec.runtime_dir = runtime_dir_for(config, settings, step);
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

// The keeper came from an exec with clean descriptors and signals
// (spawn_keeper), and made its pipes close-on-exec (keeper_main.cpp). What
// it starts (the import, the hooks, the entrypoint, and whatever they leave
// behind) is its own to stop: it becomes their subreaper, and a SIGTERM is
// passed on to its process group.
void prepare_keeper() {
  g_keeper_pid = getpid();
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  struct sigaction stop {};
  stop.sa_handler = note_stop;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTERM, &stop, nullptr);  // exec resets it: hooks die of SIGTERM
}

// The children of this process, from /proc: each thread's `children`
// list, or where the kernel has none (CONFIG_PROC_CHILDREN), every process
// whose parent this is.
std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  std::error_code ec;
  bool listed = false;
  for (const auto& task : fs::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "children");
    listed = listed || in.is_open();
    for (pid_t pid; in >> pid;) out.push_back(pid);
  }
  if (listed) return out;
  const pid_t self = getpid();
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    std::ifstream in(proc.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "PID (COMM) STATE PPID ...": COMM may hold anything, the last ')' ends it.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %ld", &state, &ppid) == 2 && ppid == self) {
      out.push_back(static_cast<pid_t>(std::strtol(stat.c_str(), nullptr, 10)));
    }
  }
  return out;
}

// Once the container has stopped, nothing it ran may outlive the step: what
// the entrypoint or a hook left behind (a daemon, `sleep 1000 &`) came back to
// the keeper as their subreaper, and is killed and reaped. Bounded: a killed
// process forks no more, and each round reaps one.
void stop_leftovers() {
  constexpr int kRounds = 100000;
  for (int round = 0; round < kRounds; ++round) {
    for (pid_t pid : own_children()) kill(pid, SIGKILL);
    if (waitpid(-1, nullptr, 0) < 0 && errno == ECHILD) return;
  }
}

// The image's config as the report carries it (for --container-save), and
// whether it is PyTorch's (the tasks then get RANK, WORLD_SIZE, ...).
void describe_image(KeeperReport& rep, const ImageConfig& image) {
  rep.image = image.to_json();
  rep.pytorch = std::any_of(image.env.begin(), image.env.end(), [](const std::string& kv) {
    return kv.starts_with("PYTORCH_VERSION=");
  });
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
  describe_image(rep, c.config);
  // Pyxis's words: the running container's mounts are what they are.
  if (!r.mounts.empty())
    rep.notice = "ignoring --container-mounts when attaching to a running container";
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
    StepImage image = resolve_image(r.image, settings, config, step, progress_fd);
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
                              const PlugstackConfig& config, const StepInfo& step) {
  prepare_keeper();
  try {
    Settings settings = load_admin_settings(step, config);
    set_environ(keeper_environment(r, step));
    KeeperPlan plan;
    if (r.name) {
      if (auto attach = plan_named(plan, r, settings, config, step, report_fd)) {
        write_line(report_fd, attach->to_json());
        _exit(0);
      }
    } else {
      StepImage image = resolve_image(r.image, settings, config, step, report_fd);
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
    describe_image(rep, plan.spec.image);
    rep.runtime_dir = plan.spec.runtime_dir;
    rep.overlay = to_string(plan.spec.overlay);
    if (!r.save.empty()) {
      rep.save_to = fs::path(r.save).is_absolute() ? fs::path(r.save) : step.cwd / r.save;
      if (!plan.named) {
        // The writes must outlive the keeper to be saved: keep them on disk.
        rep.layer_dir =
            settings.data_path / ".save" / (step.job_id + "." + step.step_id + "." + step.node);
        rep.layer_is_temporary = true;
        remove_tree(rep.layer_dir);  // a step of an earlier lab, cluster or crash
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
        write_line(report_fd, attach_report(*running, r, settings, step).to_json());
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
      write_line(report_fd, rep.to_json());
      close(report_fd);
    };
    int status = run_container(plan.spec);
    if (record_dir) remove_step_record(record_dir.get(), record_name);
    stop_leftovers();
    _exit(status);
  } catch (const Error& e) {
    write_line(report_fd, dump_text(error_json(e)));
  } catch (const std::exception& e) {
    write_line(report_fd, dump_text(error_json(Error(Errc::internal, e.what()))));
  }
  _exit(125);
}

}  // namespace

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

// Settings come from the admin's files only: job variables must not move
// the cache, data or runtime paths, or choose the mirrors file (as under
// Pyxis and Enroot), and the user's own deepops.conf is the CLI's. ${VAR} in
// those files may use the user's identity and Slurm's names for the step.
Settings load_admin_settings(const StepInfo& step, const PlugstackConfig& config) {
  const HostUser user = HostUser::current();
  EnvMap vars = {{"HOME", user.home},
                 {"USER", user.name},
                 {"LOGNAME", user.name},
                 {"UID", std::to_string(step.uid)},
                 {"GID", std::to_string(step.gid)},
                 {"SLURM_JOB_ID", step.job_id},
                 {"SLURM_STEP_ID", step.step_id},
                 {"SLURMD_NODENAME", step.node}};
  SettingsSources sources;
  sources.vars = env_lookup(std::move(vars));
  if (!config.sysconf_dir.empty()) sources.sysconf_dir = config.sysconf_dir;
  sources.environment = false;
  sources.user_file = false;
  return Settings::load(sources);
}

[[noreturn]] void run_start(int report_fd, const StartRequest& request) {
  keeper_main(report_fd, request.request, request.config, request.step);
}

}  // namespace deepops::spank
