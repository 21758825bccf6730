#include "enroot/enroot_app.hpp"

#include "util/cli_help.hpp"

namespace deepops::enroot {
namespace {

const char* kMainFooter =
    R"(deepops-enroot runs Enroot's commands over the deepops container runtime:
images are squashfs files (imported once into the cache, shared with the Slurm
plugin), containers are named containers of that runtime (`enroot list` shows
those the plugin's --container-name made). Settings: enroot.conf and
enroot.conf.d/*.conf in ENROOT_SYSCONF_PATH (/etc/enroot), then ENROOT_*
variables. Run deepops-enroot COMMAND --help for a command; man deepops-enroot
for what maps one to one and what differs.)";

const char* kStartFooter =
    R"(NAME is a container made by `create` or `load` (or the Slurm plugin's
--container-name); IMAGE a squashfs file (./x.sqsh). A container's root is
read-only unless --rw (ENROOT_ROOTFS_WRITABLE), and what --rw writes persists;
an image's writes vanish at exit. Without COMMAND the image's ENTRYPOINT and
CMD run, else a shell. The environment: the image's ENV, environ.d, the
script's environ(), then -e. Mounts: mounts.d, the script's mounts(), then -m.
Hooks: hooks.d, then the script's hooks(), with ENROOT_PID, ENROOT_ROOTFS,
ENROOT_MOUNTS and ENROOT_ENVIRON.)";

CLI::App* add(EnrootCli& cli, const char* name, const char* description, const char* usage) {
  CLI::App* cmd = cli.app.add_subcommand(name, description);
  if (usage) set_usage_arguments(*cmd, usage);
  return cmd;
}

void add_arch(CLI::App* cmd, EnrootArgs& a) {
  cmd->add_option("-a,--arch", a.arch, "architecture of the image (default: this machine's)")
      ->type_name("ARCH");
}

// Everything after the first word that is not an option is the command's.
void take_rest(CLI::App* cmd) {
  cmd->prefix_command();
  cmd->fallthrough(false);
}

}  // namespace

EnrootCli::EnrootCli(const std::string& version_text)
    : app("Command line utility for manipulating container sandboxes (Enroot's commands, "
          "over the deepops runtime).",
          "deepops-enroot") {
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text);
  EnrootArgs& a = args;

  batch = add(*this, "batch", "start -c CONFIG, with the root from its #ENROOT_ROOTFS directive",
              "CONFIG [COMMAND] [ARG...]");
  take_rest(batch);

  bundle = add(*this, "bundle", "not provided (see man deepops-enroot)", nullptr);
  bundle->allow_extras();

  create = add(*this, "create", "create a container from a container image", "IMAGE");
  create->add_option("-n,--name", a.name, "name of the container (default: IMAGE less .sqsh)")
      ->type_name("NAME");
  create->add_flag("-f,--force", a.force, "replace an existing container of that name");
  create->add_option("IMAGE", a.image, "a squashfs image file")->required();

  digest = add(*this, "digest", "print the SHA256 digest of a container image", "URI");
  add_arch(digest, a);
  digest->add_option("URI", a.uri, "docker://[USER@][REGISTRY#]IMAGE[:TAG]")->required();

  exec = add(*this, "exec", "execute a command inside a running container", "PID COMMAND [ARG...]");
  take_rest(exec);
  exec->add_option("-e,--env", a.env, "export a variable inside the container")
      ->type_name("KEY[=VAL]")
      ->allow_extra_args(false);

  export_cmd = add(*this, "export", "create a container image from a container", "NAME");
  export_cmd
      ->add_option("-o,--output", a.output, "name of the output image file (default: NAME.sqsh)")
      ->type_name("FILE");
  export_cmd->add_flag("-f,--force", a.force, "overwrite an existing image file");
  export_cmd->add_option("NAME", a.image, "the container")->required();

  import = add(*this, "import", "import a container image from a specific location", "URI");
  add_arch(import, a);
  import
      ->add_option("-o,--output", a.output,
                   "name of the output image file (default: from the URI, e.g. "
                   "nvidia+pytorch+25.01-py3.sqsh)")
      ->type_name("FILE");
  import
      ->add_option("URI", a.uri,
                   "docker://[USER@][REGISTRY#]IMAGE[:TAG], dockerd://IMAGE[:TAG], "
                   "podman://IMAGE[:TAG]; also docker-archive:FILE, oci-archive:FILE")
      ->required();

  list = add(*this, "list", "list the containers", nullptr);
  list->add_flag("-f,--fancy", a.fancy, "display more information in tabular format");

  load = add(*this, "load", "import an image and create a container from it in one step", "URI");
  add_arch(load, a);
  load->add_option("-n,--name", a.name, "name of the container (default: from the URI)")
      ->type_name("NAME");
  load->add_flag("-f,--force", a.force, "replace an existing container of that name");
  load->add_option("URI", a.uri, "docker://[USER@][REGISTRY#]IMAGE[:TAG]")->required();

  remove = add(*this, "remove", "delete one or more containers", "NAME...");
  remove->add_flag("-f,--force", a.force,
                   "do not ask for confirmation; stop a running container first");
  remove->add_option("NAME", a.names, "the containers")->required();

  start = add(*this, "start", "start a container and run a command in it",
              "NAME|IMAGE [COMMAND] [ARG...]");
  take_rest(start);
  start->footer(kStartFooter);
  start
      ->add_option("-c,--conf", a.conf,
                   "a configuration script (environ(), mounts(), hooks(), rc(), #ENROOT_ lines)")
      ->type_name("CONFIG");
  start->add_option("-e,--env", a.env, "export a variable inside the container")
      ->type_name("KEY[=VAL]")
      ->allow_extra_args(false);
  start->add_option("--rc", a.rc, "run this script instead of the image's command")
      ->type_name("SCRIPT");
  start->add_flag("-r,--root", a.root, "be remapped to root inside the container");
  start->add_flag("-w,--rw", a.rw, "make the container root filesystem writable");
  start
      ->add_option("-m,--mount", a.mounts,
                   "mount from the host, an fstab line with ':' between fields "
                   "(SRC:DST[:TYPE[:OPTIONS]])")
      ->type_name("FSTAB")
      ->allow_extra_args(false);
  start->add_flag("--pid", a.pid, "a new PID namespace (not provided: see man deepops-enroot)");
  start->add_flag("--net", a.net, "a new network namespace (loopback only)");
  start->add_flag("--ipc", a.ipc, "a new IPC namespace, and a restricted /dev");
  start->add_flag("--uts", a.uts, "a new UTS namespace");

  info = add(*this, "info", "display the configuration", nullptr);
  version = add(*this, "version", "display the version", nullptr);
  app.footer(kMainFooter);
  make_help_readable(app);
}

std::vector<std::string> EnrootCli::rest() const {
  for (CLI::App* cmd : {start, exec, batch}) {
    if (*cmd) {
      std::vector<std::string> words = cmd->remaining();
      if (!words.empty() && words[0] == "--") words.erase(words.begin());
      return words;
    }
  }
  return {};
}

int parse_enroot_command_line(EnrootCli& cli, int argc, const char* const* argv, std::ostream& out,
                              std::ostream& err) {
  return parse_or_explain(cli.app, "deepops-enroot", kEnrootUsageError, argc, argv, out, err);
}

}  // namespace deepops::enroot
