// deepops-ctr: the command-line front end of libdeepops-runtime. It parses
// options, calls the library, and prints; nothing more.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "config/settings.hpp"
#include "container/container.hpp"
#include "container/system_check.hpp"
#include "image/image_cache.hpp"
#include "image/importer.hpp"
#include "progress.hpp"
#include "start_command.hpp"
#include "usecases/images.hpp"
#include "util/env_lookup.hpp"
#include "util/error.hpp"

namespace deepops::cli {
namespace {

struct ImportArgs {
  std::string image;
  std::string output;
  std::string arch;
  std::string compression = "zstd";
  int level = 0;
  unsigned jobs = 4;
  std::string ca_file;
  std::vector<std::string> allow_http;
  std::vector<std::string> system_caches;
  std::vector<std::string> mirrors;
  std::string mirrors_config;
  std::string owners = "root";
  bool quiet = false;
};

// The settings, resolved once: the site's files, the user's, the
// environment, then the flags given, each named as the source of its value.
Settings load_settings(const std::string& cache) {
  Settings s = Settings::load(SettingsSources::from_environment(process_env_lookup()));
  if (!cache.empty()) s.set("CACHE_PATH", cache, "--cache");
  return s;
}

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

#ifdef DEEPOPS_CTR_LEAN
// This build leaves out everything an import needs (libcurl, libarchive and
// their dozens of libraries), which would cost every `start` ~7 ms of dynamic
// linking; imports run in deepops-ctr-import, the full build, beside it.
int run_import(const ImportArgs&, const std::string&, char** argv) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
  for (const char* rel : {"/deepops-ctr-import", "/../libexec/deepops/deepops-ctr-import"}) {
    std::string helper = self + rel;
    if (access(helper.c_str(), X_OK) == 0) {
      execv(helper.c_str(), argv);
      throw sys_error("cannot run " + helper, errno);
    }
  }
  throw Error(Errc::not_found, "deepops-ctr-import is not installed beside " + self,
              "reinstall the deepops package");
}
#else
// The flags, as the last layer of the settings. Lists are taken item by
// item: a folder may hold ':', and each host is checked on its own.
void apply_import_flags(Settings& s, const ImportArgs& a) {
  if (!a.ca_file.empty()) s.set("CA_FILE", a.ca_file, "--ca-file");
  if (!a.allow_http.empty()) {
    s.allow_http.clear();
    for (const auto& item : a.allow_http) {
      for (auto& host : parse_host_list(item, "--allow-http")) s.allow_http.push_back(host);
    }
    s.origin["ALLOW_HTTP"] = "--allow-http";
  }
  if (!a.system_caches.empty()) {
    s.system_caches.assign(a.system_caches.begin(), a.system_caches.end());
    s.origin["SYSTEM_CACHE"] = "--system-cache";
  }
  if (!a.mirrors_config.empty()) s.set("MIRRORS_CONFIG", a.mirrors_config, "--mirrors-config");
}

int run_import(const ImportArgs& a, const std::string& cache, char**) {
  ProgressPrinter progress(a.quiet);
  Settings settings = load_settings(cache);
  apply_import_flags(settings, a);
  ImportRequest request(parse_image_source(a.image));
  if (std::holds_alternative<SquashfsFile>(request.source)) {
    throw Error(Errc::invalid_argument, "'" + a.image + "' is a file, not an image to import",
                "start it directly: deepops-ctr start " + a.image);
  }
  request.cwd = std::filesystem::current_path();
  request.credentials = CredentialFiles::from_environment(process_env_lookup());
  if (!a.arch.empty()) request.platform = parse_platform(a.arch);
  request.squashfs.compression = parse_compression(a.compression);
  request.squashfs.level = a.level;
  request.parallel_downloads = a.jobs;
  request.owners = a.owners == "keep" ? OwnerMapping::keep : OwnerMapping::root;
  request.mirrors = a.mirrors;
  request.warn = [&](const std::string& note) {
    progress.finish();
    std::fprintf(stderr, "deepops-ctr: warning: %s\n", note.c_str());
  };
  request.progress = [&](const ImportProgress& p) { progress(p); };
  const ImportResult r = *find_or_import(request, settings).import;
  progress.finish();
  std::string path = r.image.squashfs.string();
  if (!a.output.empty()) {
    if (a.output.ends_with("/")) {
      throw Error(Errc::invalid_argument, "--output '" + a.output + "' is a folder",
                  "name the .sqsh file to write");
    }
    std::filesystem::copy_file(r.image.squashfs, a.output,
                               std::filesystem::copy_options::overwrite_existing);
    // Its ENV and CMD beside it, so that `deepops-ctr start OUTPUT` runs it as the image.
    ImageCache::write_beside(a.output, r.image);
    path = a.output;
  }
  if (!a.quiet && !r.from_cache && r.image.served_by.find("://") != std::string::npos) {
    std::fprintf(stderr, "served by mirror %s\n", r.image.served_by.c_str());
  }
  if (!a.quiet && !r.from_cache) {
    const MergeStats& s = r.stats;
    std::fprintf(
        stderr,
        "imported %s: %llu files, %s in the image (%s of data); %llu entries hidden by upper "
        "layers; %llu device nodes dropped, %llu setuid/setgid bits cleared\n",
        r.image.manifest_digest.substr(0, 19).c_str(), static_cast<unsigned long long>(s.files),
        human_bytes(r.image.size).c_str(), human_bytes(static_cast<int64_t>(s.bytes)).c_str(),
        static_cast<unsigned long long>(s.shadowed),
        static_cast<unsigned long long>(s.devices_dropped),
        static_cast<unsigned long long>(s.setid_stripped));
  }
  std::printf("%s\n", path.c_str());
  return 0;
}

#endif

int run_list(const std::string& cache, bool as_json) {
  auto images = ImageCache(load_settings(cache).cache_path).list();
  if (as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : images) {
      out.push_back({{"digest", c.manifest_digest},
                     {"references", c.references},
                     {"size", c.size},
                     {"imported_at", c.imported_at},
                     {"path", c.squashfs.string()},
                     {"served_by", c.served_by}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-19s  %10s  %-20s  %s\n", "DIGEST", "SIZE", "IMPORTED", "REFERENCES");
  for (const auto& c : images) {
    std::string refs;
    for (const auto& r : c.references) refs += (refs.empty() ? "" : ", ") + r;
    std::printf("%-19s  %10s  %-20s  %s\n", c.manifest_digest.substr(0, 19).c_str(),
                human_bytes(c.size).c_str(), c.imported_at.c_str(), refs.c_str());
  }
  return 0;
}

int run_gc(const std::string& cache, const std::string& max_size) {
  std::optional<int64_t> max;
  if (!max_size.empty()) {
    const uint64_t bytes = parse_size(max_size, "--max-size");
    if (bytes > static_cast<uint64_t>(INT64_MAX)) {
      throw Error(Errc::invalid_argument, "--max-size: '" + max_size + "' is more than any disk",
                  "give the most the cache may hold, e.g. 500G");
    }
    max = static_cast<int64_t>(bytes);
  }
  auto r = ImageCache(load_settings(cache).cache_path).gc(max);
  std::printf(
      "removed %d images and %d leftovers of interrupted imports, freeing %s; %s of images kept\n",
      r.images_removed, r.leftovers_removed, human_bytes(r.bytes_freed).c_str(),
      human_bytes(r.bytes_kept).c_str());
  if (max && r.bytes_kept > *max) {
    std::fprintf(stderr,
                 "deepops-ctr: the cache is still above %s: the rest is being imported or used\n",
                 max_size.c_str());
  }
  return 0;
}

// A container's name, else an image as `start` finds it: a reference, a
// digest, or a digest prefix of at least 6 hex digits (lookup_image).
int run_remove(const std::string& cache, const std::vector<std::string>& names) {
  const Settings settings = load_settings(cache);
  ImageCache c(settings.cache_path);
  int missing = 0;
  for (const auto& name : names) {
    if (remove_container_if_named(settings, name)) continue;
    const auto hits = lookup_image(c, name);
    if (hits.size() > 1) {
      throw Error(Errc::invalid_argument,
                  "'" + name + "' matches " + std::to_string(hits.size()) + " images",
                  "give more of the digest");
    }
    if (hits.empty()) {
      std::fprintf(stderr,
                   "deepops-ctr: no image '%s' in %s (a digest prefix needs at least 6 hex "
                   "digits)\n",
                   name.c_str(), settings.cache_path.c_str());
      ++missing;
      continue;
    }
    c.remove(hits[0].manifest_digest);
    std::printf("removed %s\n", hits[0].manifest_digest.c_str());
  }
  return missing ? 1 : 0;
}

int run_check() {
  auto results = run_system_checks({});
  size_t width = 0;
  for (const auto& r : results) width = std::max(width, r.name.size());
  int failed = 0;
  for (const auto& r : results) {
    std::printf("%-4s  %-*s  %s\n", to_string(r.status), static_cast<int>(width), r.name.c_str(),
                r.detail.c_str());
    failed += r.status == CheckResult::Status::fail;
  }
  bool header = false;
  for (const auto& r : results) {
    if (r.fix.empty()) continue;
    if (!header) std::printf("\nTo fix:\n");
    header = true;
    std::printf("  %s: %s\n", r.name.c_str(), r.fix.c_str());
  }
  std::printf("\n%s\n", failed ? "Containers cannot start here until the FAIL lines are fixed."
                               : "This node can run unprivileged containers.");
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "deepops-ctr: an unprivileged container runtime for GPU clusters.\n"
      "Images from OCI/Docker registries become one squashfs file each, kept in a cache.",
      "deepops-ctr");
  app.require_subcommand(1);
  app.fallthrough();  // --cache may come before or after the command
  app.set_version_flag("--version", "deepops-ctr " DEEPOPS_VERSION);
  std::string cache;
  app.add_option("--cache", cache,
                 "image cache folder (default: CACHE_PATH, ~/.cache/deepops; env "
                 "DEEPOPS_CACHE_PATH)");

  ImportArgs ia;
  auto* imp = app.add_subcommand("import", "import a registry image into the cache");
  imp->footer(kImportHelp);
  imp->add_option("IMAGE", ia.image, "the image to import")->required();
  imp->add_option("-o,--output", ia.output, "also write the image to this standalone .sqsh file");
  imp->add_option("--arch", ia.arch,
                  "platform to pick from a multi-arch image, e.g. arm64 or linux/arm/v7 "
                  "(default: this machine's)");
  imp->add_option("--compression", ia.compression,
                  "squashfs compression: zstd, lz4, gzip, xz or none")
      ->capture_default_str();
  imp->add_option("--level", ia.level,
                  "compression level (0: the measured default, zstd 1; see bench/README.md)")
      ->capture_default_str();
  imp->add_option("-j,--jobs", ia.jobs, "parallel layer downloads")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  imp->add_option("--ca-file", ia.ca_file,
                  "PEM CA to trust besides the system's (CA_FILE; env DEEPOPS_CA_FILE)");
  imp->add_option(
      "--allow-http", ia.allow_http,
      "registry (HOST:PORT) to reach over plain HTTP, or '*'; repeatable (ALLOW_HTTP; env "
      "DEEPOPS_ALLOW_HTTP: yes, or a comma-separated list)");
  imp->add_option("--system-cache", ia.system_caches,
                  "read-only cache folder checked first; repeatable (SYSTEM_CACHE; env "
                  "DEEPOPS_SYSTEM_CACHE, colon-separated)");
  imp->add_option("--mirror", ia.mirrors,
                  "REGISTRY=URL: try this mirror first for REGISTRY's images, e.g. "
                  "docker.io=https://mirror.site:5000; repeatable");
  imp->add_option("--mirrors-config", ia.mirrors_config,
                  "registry mirrors file (default: MIRRORS_CONFIG, /etc/deepops/mirrors.json; env "
                  "DEEPOPS_MIRRORS_CONFIG)");
  imp->add_option(
         "--owners", ia.owners,
         "root: every file owned by 0:0, which an unprivileged container shows as its user "
         "(as Enroot does); keep: the image's owners, for user namespaces with subuid ranges")
      ->check(CLI::IsMember({"root", "keep"}))
      ->capture_default_str();
  imp->add_flag("-q,--quiet", ia.quiet, "no progress output");

  bool as_json = false;
  auto* list = app.add_subcommand("list", "list the images in the cache");
  list->add_flag("--json", as_json, "machine-readable output");
  bool list_containers = false;
  list->add_flag("-c,--containers", list_containers, "list the named containers instead");

  std::vector<std::string> remove_names;
  auto* rm = app.add_subcommand("remove", "remove named containers, or images from the cache");
  rm->add_option("NAME", remove_names,
                 "a container's name, else an image's digest, digest prefix, or reference as "
                 "`list` shows it")
      ->required();

  std::string max_size;
  auto* gc = app.add_subcommand("gc", "remove leftovers of interrupted imports, and old images");
  gc->add_option("--max-size", max_size,
                 "remove the least recently used images until the cache fits, e.g. 50G");
  gc->footer(
      "Never removes an image while an import of it is running. Use counts as the last import "
      "or cache hit of each image.");

  auto* check = app.add_subcommand(
      "check", "check the kernel and system prerequisites of unprivileged containers");
  check->footer(
      "Prints one OK/WARN/FAIL line per prerequisite (user namespaces, the AppArmor "
      "restriction of Ubuntu 23.10+, FUSE and /dev/fuse, overlayfs in a user namespace), "
      "then how to fix each failure. Exits 1 if anything failed. Run it as the user who "
      "will run containers.");

  StartArgs sa;
  auto* start = add_start_command(app, sa);
  ContainerArgs ca;
  auto* create = add_create_command(app, ca);
  auto* exec = add_exec_command(app, ca);
  auto* exp = add_export_command(app, ca);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*imp) return run_import(ia, cache, argv);
    if (*list) {
      return list_containers ? run_list_containers(load_settings(cache), as_json)
                             : run_list(cache, as_json);
    }
    if (*rm) return run_remove(cache, remove_names);
    if (*gc) return run_gc(cache, max_size);
    if (*check) return run_check();
    if (*start) return run_start(sa, start->remaining(), load_settings(cache));
    if (*create) return run_create(ca, load_settings(cache));
    if (*exec) return run_exec(ca, exec->remaining(), load_settings(cache));
    if (*exp) return run_export(ca, load_settings(cache));
  } catch (const CommandError& e) {
    std::fprintf(stderr, "deepops-ctr: error: %s\n", e.what());
    if (!e.hint().empty()) std::fprintf(stderr, "deepops-ctr: hint: %s\n", e.hint().c_str());
    return e.exit_status();
  } catch (const Error& e) {
    // After an import's progress line, start on a fresh line.
    std::fprintf(stderr, "%sdeepops-ctr: error: %s\n", *imp ? "\n" : "", e.what());
    if (!e.hint().empty()) std::fprintf(stderr, "deepops-ctr: hint: %s\n", e.hint().c_str());
    // As docker and podman do: 125 says the container, not the command, failed.
    return *start || *exec ? 125 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\ndeepops-ctr: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace deepops::cli

int main(int argc, char** argv) { return deepops::cli::main(argc, argv); }
