#include "ctr_app.hpp"

#include "util/cli_help.hpp"

namespace deepops::cli {
namespace {

const char* kImportHelp =
    R"(Imports a container image from a registry into one squashfs file in the image
cache, and prints that file's path. The manifest digest decides whether anything
is downloaded: an image already in the cache (or in a system cache) is not
fetched again. Layers download in parallel, each verified against its sha256,
and are merged into the squashfs as they arrive; no layer is extracted to disk.

IMAGE is any of:
  nvcr.io/nvidia/pytorch:24.05-py3       docker style: REGISTRY/NAME[:TAG][@DIGEST]
  nvcr.io#nvidia/pytorch:24.05-py3       Enroot style: [USER@][REGISTRY#]NAME[:TAG]
  ubuntu:22.04                           Docker Hub (library/ubuntu)
  docker://ubuntu@sha256:<64 hex>        an optional docker:// prefix; pinned by digest
  oci:/srv/images/pytorch:24.05          an OCI image layout folder, for air-gapped sites
                                         (skopeo copy docker://IMAGE oci:DIR:TAG makes one)
  oci-archive:/srv/pytorch.tar[:TAG]     a tar of such a layout
  docker-archive:/srv/pytorch.tar        a `docker save` archive
  dockerd://ubuntu:22.04                 an image of the local Docker daemon (`docker save`,
                                         run as you; TAG defaults to latest)
  podman://localhost/app:1               an image of your own Podman storage (`podman save`)

Credentials: ~/.config/enroot/.credentials (netrc lines: machine HOST login USER
password PASS, where PASS may be $(command)), then ~/.docker/config.json.
For nvcr.io, the login is $oauthtoken and the password your NGC API key.

The image is sanitised while merging: entries that would leave the root, or
that lie below a symlink of their own layer, are an error; device nodes are
dropped, setuid/setgid bits cleared, only user.* xattrs kept, and every file
owned by root (see --owners). An image may unpack to at most IMPORT_MAX_SIZE
bytes (default 256G) and IMPORT_MAX_ENTRIES entries (default 10000000): the
defence against decompression bombs (see FILES in man deepops-ctr).

Mirrors: a registry's mirrors (--mirror, or the mirrors file) are tried first,
in order; the registry itself comes last unless the rule says "fallback": false.
The endpoint that served the image is recorded (`list --json`: served_by).

Settings: /etc/deepops/deepops.conf, conf.d/*.conf, ~/.config/deepops/deepops.conf,
then DEEPOPS_* variables, then these flags: CACHE_PATH (--cache), SYSTEM_CACHE,
CA_FILE, ALLOW_HTTP (yes, or HOST:PORT list), MIRRORS_CONFIG, IMPORT_MAX_SIZE,
IMPORT_MAX_ENTRIES; and the usual https_proxy/no_proxy.)";

const char* kMainFooter =
    "Run deepops-ctr COMMAND --help for a command's options; man deepops-ctr for the\n"
    "settings files, the environment and the exit statuses.";

void add_import_command(CtrCli& cli) {
  ImportArgs& ia = cli.import_args;
  auto* imp = cli.app.add_subcommand("import", "import a registry image into the cache");
  cli.import_cmd = imp;
  imp->footer(kImportHelp);
  imp->add_option("IMAGE", ia.image, "the image to import")->required();
  imp->add_option("-o,--output", ia.output, "also write the image to this standalone .sqsh file")
      ->type_name("FILE");
  imp->add_option("--arch", ia.arch,
                  "platform to pick from a multi-arch image, e.g. arm64 or linux/arm/v7 "
                  "(default: this machine's)")
      ->type_name("ARCH");
  imp->add_option("--compression", ia.compression, "squashfs compression (default: zstd)")
      ->type_name("zstd|lz4|gzip|xz|none");
  imp->add_option("--level", ia.level,
                  "compression level (0: the measured default, zstd 1; see man deepops-ctr)")
      ->type_name("N")
      ->capture_default_str();
  imp->add_option("-j,--jobs", ia.jobs, "parallel layer downloads")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  imp->add_option("--ca-file", ia.ca_file,
                  "PEM CA to trust besides the system's (CA_FILE; env DEEPOPS_CA_FILE)")
      ->type_name("PEM");
  imp->add_option("--allow-http", ia.allow_http,
                  "registry to reach over plain HTTP, or '*'; repeatable (ALLOW_HTTP; env "
                  "DEEPOPS_ALLOW_HTTP: yes, or a comma-separated list)")
      ->type_name("HOST:PORT");
  imp->add_option("--system-cache", ia.system_caches,
                  "read-only cache folder checked first; repeatable (SYSTEM_CACHE; env "
                  "DEEPOPS_SYSTEM_CACHE, colon-separated)")
      ->type_name("DIR");
  imp->add_option("--mirror", ia.mirrors,
                  "try the mirror at URL first for REGISTRY's images, e.g. "
                  "docker.io=https://mirror.site:5000; repeatable")
      ->type_name("REGISTRY=URL");
  imp->add_option("--mirrors-config", ia.mirrors_config,
                  "registry mirrors file (default: MIRRORS_CONFIG, /etc/deepops/mirrors.json; env "
                  "DEEPOPS_MIRRORS_CONFIG)")
      ->type_name("FILE");
  imp->add_option(
         "--owners", ia.owners,
         "root (the default): every file owned by 0:0, which an unprivileged container shows "
         "as its user (as Enroot does); keep: the image's owners, for user namespaces with "
         "subuid ranges")
      ->type_name("root|keep")
      ->check(CLI::IsMember({"root", "keep"}));
  imp->add_flag("-q,--quiet", ia.quiet, "no progress output");
}

// `digest`: the registry's answer for the manifest, nothing downloaded. It
// shares import's fields: the same image syntax, platform and registry flags.
void add_digest_command(CtrCli& cli) {
  ImportArgs& ia = cli.import_args;
  auto* cmd = cli.app.add_subcommand(
      "digest", "print the manifest digest a registry gives an image, downloading nothing");
  cli.digest_cmd = cmd;
  cmd->add_option("IMAGE", ia.image, "a registry image, as for import")->required();
  cmd->add_option("--arch", ia.arch, "platform of a multi-arch image (default: this machine's)")
      ->type_name("ARCH");
  cmd->add_option("--ca-file", ia.ca_file, "PEM CA to trust besides the system's")
      ->type_name("PEM");
  cmd->add_option("--allow-http", ia.allow_http,
                  "registry to reach over plain HTTP, or '*'; repeatable")
      ->type_name("HOST:PORT");
  cmd->add_option("--mirror", ia.mirrors, "try the mirror at URL first; repeatable")
      ->type_name("REGISTRY=URL");
  cmd->footer(
      "Prints sha256:<64 hex>, the digest of the platform's image manifest: the key `import` "
      "caches the image by, and what `enroot digest` prints. Credentials and mirrors as for "
      "import.");
}

}  // namespace

CtrCli::CtrCli(const std::string& version)
    : app("deepops-ctr: an unprivileged container runtime for GPU clusters.\n"
          "Images from OCI/Docker registries become one squashfs file each, kept in a cache.",
          "deepops-ctr") {
  app.require_subcommand(1);
  app.fallthrough();  // --cache may come before or after the command
  app.set_version_flag("--version", "deepops-ctr " + version);
  app.add_option("--cache", cache,
                 "image cache folder (default: CACHE_PATH, ~/.cache/deepops; env "
                 "DEEPOPS_CACHE_PATH)")
      ->type_name("DIR");

  add_import_command(*this);
  add_digest_command(*this);

  list_cmd = app.add_subcommand("list", "list the images in the cache");
  list_cmd->add_flag("--json", as_json, "machine-readable output");
  list_cmd->add_flag("-c,--containers", list_containers, "list the named containers instead");

  remove_cmd = app.add_subcommand("remove", "remove named containers, or images from the cache");
  remove_cmd
      ->add_option("NAME", remove_names,
                   "a container's name, else an image's digest, digest prefix, or reference as "
                   "`list` shows it")
      ->required();

  gc_cmd = app.add_subcommand("gc", "remove leftovers of interrupted imports, and old images");
  gc_cmd
      ->add_option("--max-size", max_size,
                   "remove the least recently used images until the cache fits, e.g. 50G")
      ->type_name("SIZE");
  gc_cmd->footer(
      "Never removes an image while an import of it is running. Use counts as the last import "
      "or cache hit of each image.");

  check_cmd = app.add_subcommand(
      "check", "check the kernel and system prerequisites of unprivileged containers");
  check_cmd->footer(
      "Prints one OK/WARN/FAIL line per prerequisite (user namespaces, the AppArmor "
      "restriction of Ubuntu 23.10+, FUSE and /dev/fuse, overlayfs in a user namespace), "
      "then how to fix each failure. Exits 1 if anything failed. Run it as the user who "
      "will run containers.");

  start_cmd = add_start_command(app, start_args);
  create_cmd = add_create_command(app, container_args);
  exec_cmd = add_exec_command(app, container_args);
  export_cmd = add_export_command(app, container_args);
  app.footer(kMainFooter);  // after the commands, which would inherit it

  make_help_readable(app);
}

int parse_command_line(CtrCli& cli, int argc, const char* const* argv, std::ostream& out,
                       std::ostream& err) {
  return parse_or_explain(cli.app, "deepops-ctr", kUsageError, argc, argv, out, err);
}

}  // namespace deepops::cli
