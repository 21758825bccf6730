#include "start_command.hpp"

#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "config/settings.hpp"
#include "container/container.hpp"
#include "container/container_store.hpp"
#include "image/image_cache.hpp"
#include "registry/image_ref.hpp"
#include "usecases/containers.hpp"
#include "usecases/images.hpp"
#include "util/cli_help.hpp"
#include "util/env_lookup.hpp"
#include "util/error.hpp"

namespace deepops::cli {
namespace {

const char* kStartHelp =
    R"(Runs COMMAND (default: the image's ENTRYPOINT and CMD) in a container made from
IMAGE, as you: no setuid helper, no root, nothing extracted. IMAGE is a name or
digest from `deepops-ctr list`, a path to a .sqsh file (./img.sqsh), or the
name of a container made by `deepops-ctr create`, whose writes persist.

The image is mounted with FUSE and covered by an overlay whose changes live in
memory and vanish at exit; "/" is read-only unless --rw. Inside: your uid and
gid (or 0 with --remap-root), the image's ENV/WORKDIR, your passwd entry, the
host's /proc, /sys (read-only), /dev, /etc/hosts, resolv.conf, machine-id and
localtime, and a private /tmp. The image's files are yours (root's with
--remap-root). As in Enroot and Pyxis, a seccomp filter makes setuid, setgid,
setgroups and chown calls succeed without effect, so that apt-get, dpkg and pip
work; --no-seccomp turns it off. Signals are passed to COMMAND and its exit status
is returned (128+N if killed by signal N; 125 when the container cannot start,
126/127 when COMMAND cannot run).

Mounts (--mount, and the mounts.d/*.fstab files):
  /data                           bind /data on /data
  /scratch/$USER:/scratch:ro      bind SRC on DST read-only (flags joined by '+')
  "tmpfs /work tmpfs size=1G"     a full fstab line; the target is inside the
                                  container; x-create=dir|file|auto creates it
Environment: the caller's, then the image's ENV, then environ.d/*.env files,
then --env. Settings: /etc/deepops/deepops.conf, conf.d/*.conf,
~/.config/deepops/deepops.conf, then DEEPOPS_* (or ENROOT_*) variables, then
the flags: MOUNT_HOME, REMAP_ROOT, ROOTFS_WRITABLE, RESTRICT_DEV,
SECCOMP_FILTER, RUNTIME_PATH, OVERLAY. See FILES in man deepops-ctr.

Examples:
  deepops-ctr start nvcr.io/nvidia/pytorch:24.05-py3 python -c 'import torch'
  deepops-ctr start --rw --remap-root ubuntu:22.04 apt-get install -y vim
  deepops-ctr start --mount-home -m /data:/data:ro -e OMP_NUM_THREADS=4 ./img.sqsh)";

void apply_env_arg(ContainerSpec& spec, const std::string& arg) {
  size_t eq = arg.find('=');
  std::string name = arg.substr(0, eq);
  if (!is_valid_env_name(name)) {
    throw Error(Errc::invalid_argument, "--env '" + arg + "': invalid variable name",
                "write NAME=VALUE, or NAME to pass the host's value");
  }
  if (eq != std::string::npos) {
    spec.env.emplace_back(name, arg.substr(eq + 1));
  } else if (auto v = process_env_lookup()(name)) {
    spec.env.emplace_back(name, *v);
  }
}

}  // namespace

CLI::App* add_start_command(CLI::App& app, StartArgs& a) {
  auto* cmd = app.add_subcommand("start", "run a command in a container of an image");
  cmd->footer(kStartHelp);
  set_usage_arguments(*cmd, "IMAGE [COMMAND...]");
  // Everything after IMAGE belongs to COMMAND, so positionals must not fall
  // through to the main parser.
  cmd->prefix_command();
  cmd->fallthrough(false);
  // One value per flag: what follows IMAGE is the command's, never ours.
  cmd->add_option("-m,--mount", a.mounts, "add a mount (see below); repeatable")
      ->type_name("MOUNT")
      ->allow_extra_args(false);
  cmd->add_option("-e,--env", a.env,
                  "set NAME to VALUE, or pass the host's value of NAME; repeatable")
      ->type_name("NAME[=VALUE]")
      ->allow_extra_args(false);
  cmd->add_option("-w,--workdir", a.workdir, "working directory (default: the image's WORKDIR)")
      ->type_name("DIR");
  cmd->add_flag("--rw,--writable", a.writable, "make / writable (changes vanish at exit)");
  cmd->add_flag("--ro,--readonly", a.readonly, "keep / read-only, whatever the settings say");
  cmd->add_flag("-r,--remap-root", a.remap_root, "be uid 0 inside (you, outside)");
  cmd->add_flag("--no-remap-root", a.no_remap_root, "keep your uid inside");
  cmd->add_flag("--mount-home", a.mount_home,
                "bind your home folder at the same path (at /root with --remap-root)");
  cmd->add_flag("--no-seccomp", a.no_seccomp,
                "no fake success for setuid/setgid/setgroups/chown (apt-get then fails)");
  cmd->add_flag("--no-mount-home", a.no_mount_home, "do not bind your home folder");
  cmd->add_flag("--restrict-dev", a.restrict_dev,
                "a minimal /dev (null, zero, random, tty, pts, shm) instead of the host's");
  cmd->add_option("--entrypoint", a.entrypoint,
                  "run this instead of the image's ENTRYPOINT (\"\" for none)")
      ->type_name("CMD")
      ->each([&a](const std::string&) { a.entrypoint_set = true; });
  cmd->add_option("--unshare", a.unshare,
                  "also give the container its own: net (loopback only), ipc, uts; "
                  "comma-separated or repeated")
      ->type_name("net|ipc|uts")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember({"net", "ipc", "uts"}));
  return cmd;
}

int run_start(const StartArgs& a, const std::vector<std::string>& rest, const Settings& settings) {
  std::vector<std::string> words = rest;
  if (!words.empty() && words[0] == "--") words.erase(words.begin());
  if (words.empty()) {
    throw Error(Errc::invalid_argument, "start: no IMAGE given",
                "deepops-ctr start IMAGE [COMMAND...]; see deepops-ctr start --help");
  }
  const EnvLookup env = process_env_lookup();
  std::optional<NamedContainer> named;
  if (ContainerStore::is_valid_name(words[0]))
    named = ContainerStore(settings.data_path).find(words[0]);
  const FoundImage image =
      named ? FoundImage{named->squashfs, named->config, "container '" + named->name + "'", {}}
            : find_image(words[0], settings, std::filesystem::current_path());

  ContainerSpec spec = container_spec(settings, image, env);
  spec.command.assign(words.begin() + 1, words.end());
  if (spec.command.size() == 1 && spec.command[0] == "--") spec.command.clear();
  if (a.entrypoint_set) spec.entrypoint = a.entrypoint;
  spec.workdir = a.workdir;
  spec.writable = (spec.writable || a.writable) && !a.readonly;
  spec.remap_root = (spec.remap_root || a.remap_root) && !a.no_remap_root;
  spec.mount_home = (spec.mount_home || a.mount_home) && !a.no_mount_home;
  spec.restrict_dev = spec.restrict_dev || a.restrict_dev;
  spec.id_call_filter = spec.id_call_filter && !a.no_seccomp;
  for (const auto& u : a.unshare) {
    spec.unshare_net |= u == "net";
    spec.unshare_ipc |= u == "ipc";
    spec.unshare_uts |= u == "uts";
  }
  for (const auto& m : a.mounts) spec.mounts.push_back(parse_mount_argument(m, env));
  for (const auto& e : a.env) apply_env_arg(spec, e);
  if (!named) return run_container(spec);
  // A named container keeps its writes: that is what it is for.
  spec.writable = !a.readonly;
  spec.persistent_dir = named->dir;
  auto lock = ContainerStore(settings.data_path).lock_for_run(*named);
  spec.on_ready = [&lock, &spec](const ReadyContainer&) {
    lock.publish_keeper(getpid(), spec.remap_root);
  };
  return run_container(spec);
}

}  // namespace deepops::cli

namespace deepops::cli {
namespace {

std::string default_container_name(const std::string& image) {
  std::string base = image.substr(
      image.find_last_of("/#") == std::string::npos ? 0 : image.find_last_of("/#") + 1);
  base = base.substr(0, base.find_first_of(":@"));
  if (base.ends_with(".sqsh")) base.resize(base.size() - 5);
  std::string out;
  for (char c : base) out += ContainerStore::is_valid_name(std::string(1, c)) ? c : '_';
  return out.empty() ? "container" : out;
}

NamedContainer find_container(const Settings& settings, const std::string& name) {
  auto c = ContainerStore(settings.data_path).find(name);
  if (!c) {
    throw Error(Errc::not_found, "no container named '" + name + "'",
                "deepops-ctr list --containers shows them; deepops-ctr create makes one");
  }
  return *c;
}

}  // namespace

CLI::App* add_create_command(CLI::App& app, ContainerArgs& a) {
  auto* cmd = app.add_subcommand("create", "make a named container whose writes persist");
  cmd->add_option("IMAGE", a.create_image, "image (as for start) to base it on")->required();
  cmd->add_option(
         "-n,--name", a.create_name,
         "its name (default: the image's name, e.g. pytorch for nvcr.io/nvidia/pytorch:24.05)")
      ->type_name("NAME");
  cmd->footer(
      "The container keeps a hard link to the image, so `gc` never takes it away, and a "
      "writable layer in $DEEPOPS_DATA_PATH/containers/NAME (default "
      "~/.local/share/deepops). `start NAME` runs it (one keeper at a time), `exec NAME CMD` "
      "joins a running one, `export NAME OUT.sqsh` saves it as a new image, `remove NAME` "
      "deletes it.");
  return cmd;
}

CLI::App* add_exec_command(CLI::App& app, ContainerArgs& a) {
  auto* cmd = app.add_subcommand("exec", "run a command in a running named container");
  set_usage_arguments(*cmd, "NAME COMMAND [ARG...]");
  cmd->prefix_command();
  cmd->fallthrough(false);
  cmd->add_option("-e,--env", a.exec_env,
                  "set NAME to VALUE, or pass the host's value of NAME; repeatable")
      ->type_name("NAME[=VALUE]")
      ->allow_extra_args(false);
  cmd->add_option("-w,--workdir", a.exec_workdir, "working directory (default: the image's)")
      ->type_name("DIR");
  cmd->add_flag("--no-seccomp", a.exec_no_seccomp,
                "no fake success for setuid/setgid/setgroups/chown");
  cmd->footer(
      "Joins the namespaces of the container that `deepops-ctr start NAME` is running: "
      "same mounts, same writable layer, same identity.");
  return cmd;
}

CLI::App* add_export_command(CLI::App& app, ContainerArgs& a) {
  auto* cmd = app.add_subcommand("export", "save a named container as a new squashfs image");
  cmd->add_option("NAME", a.export_name, "the container")->required();
  cmd->add_option("OUTPUT", a.export_output, "the .sqsh file to write")->required();
  cmd->footer(
      "The image and the container's writes, as one squashfs (zstd), with its ENV and "
      "CMD in OUTPUT's .json beside it: `deepops-ctr start OUTPUT` runs it. The container "
      "must not be running.");
  return cmd;
}

int run_create(const ContainerArgs& a, const Settings& settings) {
  const FoundImage image = find_image(a.create_image, settings, std::filesystem::current_path());
  std::string name = a.create_name.empty() ? default_container_name(a.create_image) : a.create_name;
  auto c =
      ContainerStore(settings.data_path).create(name, image.squashfs, a.create_image, image.config);
  std::printf("%s\n", c.name.c_str());
  return 0;
}

int run_exec(const ContainerArgs& a, const std::vector<std::string>& rest,
             const Settings& settings) {
  std::vector<std::string> words = rest;
  if (!words.empty() && words[0] == "--") words.erase(words.begin());
  if (words.size() < 2) {
    throw Error(Errc::invalid_argument, "exec: give a container name and a command",
                "deepops-ctr exec NAME COMMAND [ARG...]");
  }
  const EnvLookup env = process_env_lookup();
  NamedContainer c = find_container(settings, words[0]);
  if (c.running_elsewhere) {
    throw Error(Errc::busy, "container '" + c.name + "' is running on another machine",
                "exec on the node that runs it; DATA_PATH is shared between machines here");
  }
  if (!c.keeper) {
    throw Error(Errc::not_found, "container '" + c.name + "' is not running",
                "start it: deepops-ctr start " + c.name);
  }
  ContainerSpec spec;
  spec.image = c.config;
  spec.environ = settings.load_environ(env);
  for (const auto& e : a.exec_env) apply_env_arg(spec, e);
  ExecSpec x;
  x.keeper = *c.keeper;
  x.id_call_filter = settings.seccomp_filter && !a.exec_no_seccomp;
  x.container_name = c.name;
  x.argv.assign(words.begin() + 1, words.end());
  x.env = container_environment(spec, host_environment());
  if (c.remap_root) x.env["HOME"] = "/root";
  x.workdir = !a.exec_workdir.empty()         ? a.exec_workdir
              : !c.config.working_dir.empty() ? c.config.working_dir
                                              : "/";
  x.workdir_required = !a.exec_workdir.empty();
  return exec_in_container(x);
}

int run_export(const ContainerArgs& a, const Settings& settings) {
  NamedContainer c = find_container(settings, a.export_name);
  auto lock = ContainerStore(settings.data_path).lock_for_run(c);
  export_image(export_request(settings, c.squashfs, c.config, c.image, c.dir), a.export_output);
  std::printf("%s\n", a.export_output.c_str());
  return 0;
}

int run_list_containers(const Settings& settings, bool as_json) {
  auto all = ContainerStore(settings.data_path).list();
  if (as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : all) {
      out.push_back({{"name", c.name},
                     {"image", c.image},
                     {"created_at", c.created_at},
                     {"running", c.keeper.has_value() || c.running_elsewhere},
                     {"running_elsewhere", c.running_elsewhere},
                     {"keeper_pid", c.keeper.value_or(0)},
                     {"path", c.dir.string()}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-24s  %-16s  %-20s  %s\n", "NAME", "STATE", "CREATED", "IMAGE");
  for (const auto& c : all) {
    std::string state = c.keeper              ? "running (" + std::to_string(*c.keeper) + ")"
                        : c.running_elsewhere ? "running elsewhere"
                                              : "stopped";
    std::printf("%-24s  %-16s  %-20s  %s\n", c.name.c_str(), state.c_str(), c.created_at.c_str(),
                c.image.c_str());
  }
  return 0;
}

bool remove_container_if_named(const Settings& settings, const std::string& name) {
  if (!ContainerStore::is_valid_name(name)) return false;
  ContainerStore store(settings.data_path);
  if (!store.find(name)) return false;
  store.remove(name);
  std::printf("removed container %s\n", name.c_str());
  return true;
}

}  // namespace deepops::cli
