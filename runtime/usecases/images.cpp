#include "usecases/images.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "image/archive_origin.hpp"
#include "image/daemon_origin.hpp"
#include "image/image_origin.hpp"
#include "util/error.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

std::unique_ptr<ImageOrigin> offline_origin(const OfflineImage& image, const fs::path& cwd,
                                            const fs::path& scratch) {
  const fs::path path = image.path.is_absolute() ? image.path : cwd / image.path;
  using F = OfflineImage::Format;
  if (image.format == F::oci_layout) return oci_layout_origin(path, image.tag);
  return archive_origin(image.format == F::docker_archive, path, image.tag, scratch);
}

// Where the client of a daemon image is looked for.
std::string search_path(const ImportRequest& request) {
  const EnvLookup env = request.env ? request.env : process_env_lookup();
  // execvp's default when PATH is unset.
  return env("PATH").value_or("/bin:/usr/bin");
}

FoundImage imported(ImportResult r, const std::string& name) {
  FoundImage out{r.image.squashfs, r.image.config, name, std::nullopt};
  out.import = std::move(r);
  return out;
}

}  // namespace

ImportOptions import_options(const Settings& settings, const ImportRequest& request) {
  ImportOptions o;
  o.cache = settings.cache_path;
  o.system_caches = settings.system_caches;
  o.limits = settings.import_limits;
  o.registry.allow_http = settings.allow_http;
  o.registry.http.ca_file = settings.ca_file;
  o.registry.credentials = request.credentials;
  o.mirrors = MirrorConfig::load(settings.mirrors_config);
  for (const auto& m : request.mirrors) o.mirrors.add(m);
  if (request.platform) o.platform = *request.platform;
  o.squashfs = request.squashfs;
  o.owners = request.owners;
  o.parallel_downloads = request.parallel_downloads;
  o.progress = request.progress;
  o.warn = request.warn;
  return o;
}

std::string resolve_manifest_digest(const ImportRequest& request, const Settings& settings) {
  const auto* ref = std::get_if<RegistryImage>(&request.source);
  if (!ref) {
    throw Error(Errc::invalid_argument,
                "'" + describe(request.source) + "' is not an image of a registry",
                "a digest is asked of a registry: give REGISTRY/IMAGE:TAG or docker://...");
  }
  const ImportOptions options = import_options(settings, request);
  auto origin = registry_origin(*ref, options.registry, options.mirrors, options.warn);
  return origin->resolve(options.platform).manifest_digest;
}

FoundImage find_or_import(const ImportRequest& request, const Settings& settings) {
  if (const auto* file = std::get_if<SquashfsFile>(&request.source)) {
    return read_squashfs_file(*file, request.cwd);
  }
  const ImportOptions options = import_options(settings, request);
  if (const auto* ref = std::get_if<RegistryImage>(&request.source)) {
    return imported(import_image(*ref, options), ref->canonical());
  }
  const fs::path scratch = settings.cache_path / "tmp";
  if (const auto* daemon = std::get_if<DaemonImage>(&request.source)) {
    auto origin = daemon_origin(daemon->client, daemon->reference(), search_path(request), scratch);
    return imported(import_image(*origin, options), describe(request.source));
  }
  auto origin = offline_origin(std::get<OfflineImage>(request.source), request.cwd, scratch);
  return imported(import_image(*origin, options), describe(request.source));
}

}  // namespace deepops
