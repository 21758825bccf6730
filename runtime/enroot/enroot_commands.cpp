#include "enroot/enroot_commands.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "container/container.hpp"
#include "container/container_store.hpp"
#include "enroot/conf_script.hpp"
#include "enroot/enroot_names.hpp"
#include "enroot/process_wait.hpp"
#include "usecases/containers.hpp"
#include "usecases/images.hpp"
#include "util/child_process.hpp"
#include "util/error.hpp"
#include "util/installed_program.hpp"
#include "util/strings.hpp"

namespace deepops::enroot {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxEnviron = 1 << 20;

Error invalid_argument(const std::string& what, const std::string& hint = {}) {
  return Error(Errc::invalid_argument, "Invalid argument: " + what, hint);
}

Error already_exists(const fs::path& path, const std::string& hint) {
  return Error(Errc::invalid_argument, "File already exists: " + path.string(), hint);
}

// Enroot's architecture names (uname -m) in OCI's.
std::string oci_arch(const std::string& arch) {
  if (arch == "x86_64") return "amd64";
  if (arch == "aarch64") return "arm64";
  return arch;
}

// The import as deepops-ctr-import runs it, with Enroot's settings as its flags.
std::vector<std::string> import_argv(const EnrootContext& ctx, const std::string& uri,
                                     const std::string& arch, const std::string& output) {
  const Settings settings = ctx.config.settings();
  std::vector<std::string> argv = {installed_program("deepops-ctr-import").string(), "import"};
  if (!output.empty()) argv.insert(argv.end(), {"--output", output});
  if (!arch.empty()) argv.insert(argv.end(), {"--arch", oci_arch(arch)});
  argv.insert(argv.end(), {"--jobs", std::to_string(ctx.config.max_connections())});
  const SquashOptions squash = ctx.config.squash_options();
  if (!squash.compression.empty()) argv.insert(argv.end(), {"--compression", squash.compression});
  if (squash.level > 0) argv.insert(argv.end(), {"--level", std::to_string(squash.level)});
  for (const auto& host : settings.allow_http) argv.insert(argv.end(), {"--allow-http", host});
  argv.push_back(uri);
  // Credentials are read from ENROOT_CONFIG_PATH/.credentials, as Enroot reads them.
  setenv("ENROOT_CONFIG_PATH", ctx.config.config_dir().c_str(), 1);
  return argv;
}

std::optional<NamedContainer> find_named(const Settings& settings, const std::string& name) {
  ContainerStore store(settings.data_path);
  if (ContainerStore::is_valid_name(name)) {
    if (auto c = store.find(name)) return c;
  }
  // Pyxis names its containers pyxis_NAME in Enroot's list; scripts remove them so.
  if (name.starts_with("pyxis_") && ContainerStore::is_valid_name(name.substr(6))) {
    return store.find(name.substr(6));
  }
  return std::nullopt;
}

NamedContainer require_named(const Settings& settings, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) throw invalid_argument(name);
  auto c = find_named(settings, name);
  if (!c) {
    throw Error(Errc::not_found, "No such file or directory: " + name,
                "enroot list shows the containers; enroot create makes one");
  }
  return *c;
}

FoundImage image_file(const std::string& path, const fs::path& cwd) {
  return read_squashfs_file(SquashfsFile{fs::absolute(cwd / path).lexically_normal()}, cwd);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

void apply_env(std::vector<std::pair<std::string, std::string>>& out, const std::string& arg,
               const EnvLookup& env) {
  if (!is_valid_env_argument(arg)) throw invalid_argument(arg, "write -e KEY or -e KEY=VALUE");
  const size_t eq = arg.find('=');
  if (eq != std::string::npos) {
    out.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
  } else {
    out.emplace_back(arg, env(arg).value_or(""));
  }
}

// A folder of the runtime path, removed with everything in it when done.
class ScratchFolder {
 public:
  explicit ScratchFolder(const fs::path& parent) {
    fs::create_directories(parent);
    std::string tmpl = (parent / "enroot-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw sys_error("cannot make a folder in " + parent.string(), errno);
    path_ = tmpl;
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_file_text(const fs::path& p, size_t max) {
  std::ifstream in(p, std::ios::binary);
  std::string text(max, '\0');
  in.read(text.data(), static_cast<std::streamsize>(max));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

// A container runs once at a time: a second start says how to join it, in
// Enroot's words.
ContainerStore::RunLock lock_container(const Settings& settings, const NamedContainer& c) {
  try {
    return ContainerStore(settings.data_path).lock_for_run(c);
  } catch (const Error& e) {
    if (e.code() != Errc::busy) throw;
    throw Error(Errc::busy, e.what(),
                "join it with: enroot exec PID COMMAND (enroot list -f shows its PIDs)");
  }
}

[[noreturn]] void exec_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& w : argv) args.push_back(const_cast<char*>(w.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  throw sys_error("cannot run " + argv[0], errno);
}

void note_unavailable_flags(const EnrootArgs& a) {
  if (a.pid) {
    std::fprintf(stderr,
                 "deepops-enroot: note: --pid is not provided: the container shares the host's "
                 "PID namespace (Slurm's proctrack must see its processes)\n");
  }
}

}  // namespace

int run_version(const EnrootContext& ctx) {
  // Enroot's release whose commands this follows; deepops's as build metadata.
  std::printf("4.1.0+deepops.%s\n", ctx.version.c_str());
  return 0;
}

int run_info(const EnrootContext& ctx) {
  const Settings s = ctx.config.settings();
  std::printf("Enroot version: 4.1.0+deepops.%s (deepops-enroot)\n", ctx.version.c_str());
  std::printf("Config file: %s\n", ctx.config.config_file().c_str());
  std::printf("\nWhere things are:\n");
  std::printf("  images (CACHE_PATH)       %s\n", s.cache_path.c_str());
  std::printf("  containers (DATA_PATH)    %s\n", s.data_path.c_str());
  std::printf("  runtime (RUNTIME_PATH)    %s\n", s.runtime_path.c_str());
  std::printf("  credentials, user config  %s\n", s.config_path.c_str());
  std::printf("  mounts.d, environ.d, hooks.d in: %s, %s, %s\n", s.sysconf_dir.c_str(),
              ctx.config.sysconf_dir().c_str(), s.config_path.c_str());
  std::printf("\nEnvironment variables:\n");
  for (const auto& [key, v] : ctx.config.values()) {
    std::printf("  %s=%s  (%s)\n", key.c_str(), v.value.c_str(), v.origin.c_str());
  }
  const auto notes = ctx.config.notes();
  if (!notes.empty()) std::printf("\nAccepted, but without effect here:\n");
  for (const auto& n : notes) {
    std::printf("  %s=%s  (%s): %s\n", n.key.c_str(), n.value.c_str(), n.origin.c_str(),
                n.why.c_str());
  }
  std::vector<std::string> skipped;
  for (const auto& dir : {ctx.config.sysconf_dir(), s.config_path}) {
    for (const char* sub : {"hooks.d", "mounts.d"}) {
      for (const auto& f : enroot_standard_files()) {
        if (is_file(dir / sub / f)) skipped.push_back((dir / sub / f).string());
      }
    }
  }
  if (!skipped.empty()) {
    std::printf(
        "\nEnroot's standard hooks and mounts, skipped (the runtime's native hooks "
        "do their work):\n");
    for (const auto& f : skipped) std::printf("  %s\n", f.c_str());
  }
  return 0;
}

int run_import(const EnrootContext& ctx, const EnrootArgs& a) {
  const std::string default_file = default_image_file(a.uri);  // throws on a bad URI
  const std::string file = a.output.empty() ? default_file : a.output;
  const fs::path out = fs::absolute(ctx.cwd / file).lexically_normal();
  if (fs::exists(out)) {
    throw already_exists(out, "remove it, or name another file with -o");
  }
  const std::vector<std::string> argv = import_argv(ctx, a.uri, a.arch, out.string());
  // Enroot's import prints nothing on stdout: the path deepops-ctr prints goes to stderr.
  std::fflush(stdout);
  dup2(STDERR_FILENO, STDOUT_FILENO);
  exec_program(argv);
}

int run_digest(const EnrootContext& ctx, const EnrootArgs& a) {
  if (!a.uri.starts_with("docker://")) throw invalid_argument(a.uri);
  const Settings settings = ctx.config.settings();
  std::vector<std::string> argv = {installed_program("deepops-ctr-import").string(), "digest"};
  if (!a.arch.empty()) argv.insert(argv.end(), {"--arch", oci_arch(a.arch)});
  for (const auto& host : settings.allow_http) argv.insert(argv.end(), {"--allow-http", host});
  argv.push_back(a.uri);
  setenv("ENROOT_CONFIG_PATH", ctx.config.config_dir().c_str(), 1);
  exec_program(argv);
}

int run_load(const EnrootContext& ctx, const EnrootArgs& a) {
  if (!a.uri.starts_with("docker://")) throw invalid_argument(a.uri);
  const Settings settings = ctx.config.settings();
  std::string name = a.name;
  if (name.empty()) name = default_container_name(default_image_file(a.uri));
  if (name.find('/') != std::string::npos) throw invalid_argument(name);
  ContainerStore::validate_name(name);
  const bool force = a.force || ctx.config.is_true("ENROOT_FORCE_OVERRIDE");
  if (find_named(settings, name) && !force) {
    throw already_exists(settings.data_path / "containers" / name, "-f replaces it");
  }
  const CapturedRun run = run_capturing_stdout(import_argv(ctx, a.uri, a.arch, ""), 1 << 16);
  if (run.exit_status != 0) return 1;  // deepops-ctr said why on stderr
  const std::string squashfs = trim(run.out);
  if (force && find_named(settings, name)) ContainerStore(settings.data_path).remove(name);
  const FoundImage image = image_file(squashfs, ctx.cwd);
  ContainerStore(settings.data_path).create(name, image.squashfs, a.uri, image.config);
  return 0;
}

int run_create(const EnrootContext& ctx, const EnrootArgs& a) {
  const Settings settings = ctx.config.settings();
  const fs::path path = fs::absolute(ctx.cwd / a.image).lexically_normal();
  if (!is_file(path)) {
    throw Error(Errc::not_found, "No such file or directory: " + path.string(),
                "enroot import docker://IMAGE makes an image file");
  }
  std::string name = a.name.empty() ? default_container_name(a.image) : a.name;
  if (name.find('/') != std::string::npos) throw invalid_argument(name);
  ContainerStore::validate_name(name);
  const FoundImage image = image_file(path.string(), ctx.cwd);
  ContainerStore store(settings.data_path);
  if (store.find(name)) {
    if (!a.force && !ctx.config.is_true("ENROOT_FORCE_OVERRIDE")) {
      throw already_exists(settings.data_path / "containers" / name, "-f replaces it");
    }
    store.remove(name);  // refuses a running one, saying so
  }
  store.create(name, image.squashfs, path.string(), image.config);
  return 0;
}

int run_start(EnrootContext& ctx, const EnrootArgs& a, const std::vector<std::string>& words) {
  if (words.empty() || words[0].empty()) {
    throw invalid_argument("no NAME or IMAGE", "enroot start [options] NAME|IMAGE [COMMAND...]");
  }
  const std::vector<std::string> command(words.begin() + 1, words.end());
  for (const auto& m : a.mounts) (void)parse_enroot_mount(m, ctx.cwd.string(), ctx.env);
  for (const auto& e : a.env) {
    if (!is_valid_env_argument(e)) throw invalid_argument(e, "write -e KEY or -e KEY=VALUE");
  }
  std::optional<ConfScript> conf;
  if (!a.conf.empty()) {
    const fs::path script = fs::absolute(ctx.cwd / a.conf);
    conf = evaluate_conf_script(script, command, ctx.env);
    ctx.config.apply_directives(conf->text, script.string());
  }
  if (a.root) ctx.config.set("ENROOT_REMAP_ROOT", "y", "--root");
  if (a.rw) ctx.config.set("ENROOT_ROOTFS_WRITABLE", "y", "--rw");
  if (a.net) ctx.config.set("ENROOT_UNSHARE_NET", "y", "--net");
  if (a.ipc) ctx.config.set("ENROOT_UNSHARE_IPC", "y", "--ipc");
  if (a.uts) ctx.config.set("ENROOT_UNSHARE_UTS", "y", "--uts");
  note_unavailable_flags(a);
  const Settings settings = ctx.config.settings();

  std::optional<NamedContainer> named;
  FoundImage image;
  const fs::path as_path = fs::absolute(ctx.cwd / words[0]).lexically_normal();
  if (is_file(as_path)) {
    image = image_file(as_path.string(), ctx.cwd);
  } else {
    named = require_named(settings, words[0]);
    image = FoundImage{named->squashfs, named->config, "container '" + named->name + "'", {}};
  }
  ContainerSpec spec = container_spec(settings, image, ctx.env);
  spec.unshare_net = ctx.config.is_true("ENROOT_UNSHARE_NET");
  spec.unshare_ipc = ctx.config.is_true("ENROOT_UNSHARE_IPC");
  spec.unshare_uts = ctx.config.is_true("ENROOT_UNSHARE_UTS");
  spec.restrict_dev = spec.restrict_dev || spec.unshare_ipc;  // as Enroot's --ipc
  spec.command = command;
  std::optional<std::string> rc;
  if (!a.rc.empty()) {
    const fs::path script = fs::absolute(ctx.cwd / a.rc);
    if (!is_file(script))
      throw Error(Errc::not_found, "No such file or directory: " + script.string());
    rc = read_file_text(script, 1 << 20);
  } else if (conf && conf->rc) {
    rc = conf->rc;
  }
  if (rc) {
    // Enroot's command script: run by the shell, the command as its arguments.
    spec.entrypoint = "";
    spec.command = {"/bin/sh", "-c", *rc, "rc"};
    spec.command.insert(spec.command.end(), command.begin(), command.end());
  } else if (command.empty() && image.config.entrypoint.empty() && image.config.cmd.empty()) {
    spec.command = {"/bin/sh"};  // as Enroot: a shell when there is nothing to run
  }
  if (conf) {
    spec.environ.insert(spec.environ.end(), conf->environ.begin(), conf->environ.end());
    spec.mounts.insert(spec.mounts.end(), conf->mounts.begin(), conf->mounts.end());
  }
  for (const auto& m : a.mounts)
    spec.mounts.push_back(parse_enroot_mount(m, ctx.cwd.string(), ctx.env));
  for (const auto& e : a.env) apply_env(spec.env, e, ctx.env);
  std::optional<ScratchFolder> hooks_dir;
  if (conf && conf->has_hooks) {
    hooks_dir.emplace(settings.runtime_path);
    spec.hooks.push_back(write_conf_hook(*conf, hooks_dir->path()));
  }
  if (!named) return run_container(spec);
  spec.persistent_dir = named->dir;
  auto lock = lock_container(settings, *named);
  spec.on_ready = [&lock, &spec](const ReadyContainer&) {
    lock.publish_keeper(getpid(), spec.remap_root);
  };
  return run_container(spec);
}

int run_batch(EnrootContext& ctx, const EnrootArgs& a, const std::vector<std::string>& words) {
  if (words.empty()) throw invalid_argument("no CONFIG", "enroot batch CONFIG [COMMAND...]");
  const fs::path script = fs::absolute(ctx.cwd / words[0]);
  if (!is_file(script))
    throw Error(Errc::not_found, "No such file or directory: " + script.string());
  EnrootConfig directives = ctx.config;
  directives.apply_directives(read_file_text(script, 1 << 20), script.string());
  const auto rootfs = directives.value("ENROOT_ROOTFS");
  if (!rootfs || rootfs->empty()) {
    throw Error(Errc::invalid_argument, script.string() + " has no #ENROOT_ROOTFS directive",
                "add a line #ENROOT_ROOTFS=NAME (a container) or #ENROOT_ROOTFS=./image.sqsh");
  }
  EnrootArgs start_args = a;
  start_args.conf = script.string();
  std::vector<std::string> start_words = {*rootfs};
  start_words.insert(start_words.end(), words.begin() + 1, words.end());
  return run_start(ctx, start_args, start_words);
}

int run_exec(const EnrootContext& ctx, const EnrootArgs& a, const std::vector<std::string>& words) {
  if (words.size() < 2)
    throw invalid_argument("give a PID and a COMMAND", "enroot exec PID COMMAND [ARG...]");
  const std::string& pid_text = words[0];
  if (pid_text.empty() || pid_text.size() > 9 ||
      pid_text.find_first_not_of("0123456789") != std::string::npos) {
    throw invalid_argument(pid_text, "the PID of a process in the container (enroot list -f)");
  }
  const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
  if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {
    throw Error(Errc::not_found, "Process not found: " + pid_text, "enroot list -f shows them");
  }
  const Settings settings = ctx.config.settings();
  const fs::path proc = "/proc/" + pid_text;
  ExecSpec x;
  x.keeper = pid;
  x.id_call_filter = settings.seccomp_filter;
  x.container_name = "process " + pid_text;
  x.argv.assign(words.begin() + 1, words.end());
  // As Enroot: the process's environment, then -e.
  for (const auto& entry : split(read_file_text(proc / "environ", kMaxEnviron), '\0')) {
    const size_t eq = entry.find('=');
    if (eq != std::string::npos && eq > 0) x.env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  std::vector<std::pair<std::string, std::string>> extra;
  for (const auto& e : a.env) apply_env(extra, e, ctx.env);
  for (const auto& [k, v] : extra) x.env[k] = v;
  std::error_code ec;
  const fs::path cwd = fs::read_symlink(proc / "cwd", ec);
  x.workdir = ec ? "/" : cwd.string();
  x.workdir_required = false;
  return exec_in_container(x);
}

int run_export(const EnrootContext& ctx, const EnrootArgs& a) {
  const Settings settings = ctx.config.settings();
  const NamedContainer c = require_named(settings, a.image);
  const std::string file = a.output.empty() ? c.name + ".sqsh" : a.output;
  const fs::path out = fs::absolute(ctx.cwd / file).lexically_normal();
  if (fs::exists(out)) {
    if (!a.force && !ctx.config.is_true("ENROOT_FORCE_OVERRIDE")) {
      throw already_exists(out, "-f overwrites it");
    }
    fs::remove(out);
  }
  auto lock = ContainerStore(settings.data_path).lock_for_run(c);
  export_image(export_request(settings, c.squashfs, c.config, c.image, c.dir), out);
  return 0;
}

int run_list(const EnrootContext& ctx, const EnrootArgs& a) {
  const Settings settings = ctx.config.settings();
  if (a.fancy) {
    std::fputs(fancy_container_table(settings).c_str(), stdout);
    return 0;
  }
  for (const auto& c : ContainerStore(settings.data_path).list())
    std::printf("%s\n", c.name.c_str());
  return 0;
}

int run_remove(const EnrootContext& ctx, const EnrootArgs& a) {
  const Settings settings = ctx.config.settings();
  const bool force = a.force || ctx.config.is_true("ENROOT_FORCE_OVERRIDE");
  for (const auto& name : a.names) {
    NamedContainer c = require_named(settings, name);
    if (!force) {
      std::fprintf(stderr, "Do you really want to delete %s? [y/N] ", c.name.c_str());
      std::fflush(stderr);
      std::string reply;
      std::getline(std::cin, reply);
      if (reply != "y" && reply != "Y") continue;
    }
    if (c.running_elsewhere) {
      throw Error(Errc::busy, "container '" + c.name + "' is running on another node",
                  "remove it there, or once it has stopped");
    }
    if (c.keeper) stop_process(*c.keeper, "container '" + c.name + "'");
    ContainerStore(settings.data_path).remove(c.name);
  }
  return 0;
}

}  // namespace deepops::enroot
