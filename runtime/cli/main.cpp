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
#include "ctr_app.hpp"
#include "image/image_cache.hpp"
#include "image/importer.hpp"
#include "progress.hpp"
#include "start_command.hpp"
#include "usecases/images.hpp"
#include "util/env_lookup.hpp"
#include "util/error.hpp"
#include "util/installed_program.hpp"

namespace deepops::cli {
namespace {

// The settings, resolved once: the site's files, the user's, the
// environment, then the flags given, each named as the source of its value.
Settings load_settings(const std::string& cache) {
  Settings s = Settings::load(SettingsSources::from_environment(process_env_lookup()));
  if (!cache.empty()) s.set("CACHE_PATH", cache, "--cache");
  return s;
}

#ifdef DEEPOPS_CTR_LEAN
// This build leaves out everything an import needs (libcurl, libarchive and
// their dozens of libraries), which would cost every `start` ~7 ms of dynamic
// linking; imports run in deepops-ctr-import, the full build, beside it.
int run_import(const ImportArgs&, const std::string&, char** argv) {
  const std::string helper = installed_program("deepops-ctr-import").string();
  execv(helper.c_str(), argv);
  throw sys_error("cannot run " + helper, errno);
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
    std::error_code ec;
    std::filesystem::copy_file(r.image.squashfs, a.output,
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      throw sys_error("cannot write --output " + a.output, ec.value(),
                      "name a file in a folder you may write to");
    }
    // Its ENV and CMD beside it, so that `deepops-ctr start OUTPUT` runs it as the image.
    ImageCache::write_beside(a.output, r.image);
    path = a.output;
  }
  // A registry image names the mirror that served it; a daemon's or an
  // archive's own name has "://" too, and is no mirror.
  const bool from_registry = std::holds_alternative<RegistryImage>(request.source);
  if (!a.quiet && !r.from_cache && from_registry &&
      r.image.served_by.find("://") != std::string::npos) {
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

int run_digest(const ImportArgs& a, const std::string& cache) {
  Settings settings = load_settings(cache);
  apply_import_flags(settings, a);
  ImportRequest request(parse_image_source(a.image));
  request.credentials = CredentialFiles::from_environment(process_env_lookup());
  if (!a.arch.empty()) request.platform = parse_platform(a.arch);
  request.mirrors = a.mirrors;
  request.warn = [](const std::string& note) {
    std::fprintf(stderr, "deepops-ctr: warning: %s\n", note.c_str());
  };
  std::printf("%s\n", resolve_manifest_digest(request, settings).c_str());
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
  CtrCli cli(DEEPOPS_VERSION);
  if (const int status = parse_command_line(cli, argc, argv); status >= 0) return status;
  const ImportArgs& ia = cli.import_args;
  const std::string& cache = cli.cache;
  CLI::App *imp = cli.import_cmd, *start = cli.start_cmd, *exec = cli.exec_cmd;
  try {
    if (*imp) return run_import(ia, cache, argv);
#ifdef DEEPOPS_CTR_LEAN
    if (*cli.digest_cmd) return run_import(ia, cache, argv);  // deepops-ctr-import's work
#else
    if (*cli.digest_cmd) return run_digest(ia, cache);
#endif
    if (*cli.list_cmd) {
      return cli.list_containers ? run_list_containers(load_settings(cache), cli.as_json)
                                 : run_list(cache, cli.as_json);
    }
    if (*cli.remove_cmd) return run_remove(cache, cli.remove_names);
    if (*cli.gc_cmd) return run_gc(cache, cli.max_size);
    if (*cli.check_cmd) return run_check();
    if (*start) return run_start(cli.start_args, start->remaining(), load_settings(cache));
    if (*cli.create_cmd) return run_create(cli.container_args, load_settings(cache));
    if (*exec) return run_exec(cli.container_args, exec->remaining(), load_settings(cache));
    if (*cli.export_cmd) return run_export(cli.container_args, load_settings(cache));
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
