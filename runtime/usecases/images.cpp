#include "usecases/images.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "image/archive_origin.hpp"
#include "image/image_origin.hpp"
#include "util/error.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

FoundImage read_squashfs_file(const SquashfsFile& file, const fs::path& cwd) {
  const fs::path p = file.path.is_absolute() ? file.path : cwd / file.path;
  if (access(p.c_str(), R_OK) != 0) {
    throw sys_error("cannot read the image file " + p.string(), errno,
                    "give the path of a squashfs file that you can read (for a job: on every "
                    "node of it)");
  }
  auto meta = ImageCache::read_beside(p);
  return {p, meta ? meta->config : ImageConfig{}, file.path.string(), std::nullopt};
}

std::unique_ptr<ImageOrigin> offline_origin(const OfflineImage& image, const fs::path& cwd,
                                            const fs::path& scratch) {
  const fs::path path = image.path.is_absolute() ? image.path : cwd / image.path;
  using F = OfflineImage::Format;
  if (image.format == F::oci_layout) return oci_layout_origin(path, image.tag);
  return archive_origin(image.format == F::docker_archive, path, image.tag, scratch);
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

FoundImage find_or_import(const ImportRequest& request, const Settings& settings) {
  if (const auto* file = std::get_if<SquashfsFile>(&request.source)) {
    return read_squashfs_file(*file, request.cwd);
  }
  const ImportOptions options = import_options(settings, request);
  if (const auto* ref = std::get_if<RegistryImage>(&request.source)) {
    return imported(import_image(*ref, options), ref->canonical());
  }
  auto origin = offline_origin(std::get<OfflineImage>(request.source), request.cwd,
                               settings.cache_path / "tmp");
  return imported(import_image(*origin, options), describe(request.source));
}

std::vector<CachedImage> lookup_image(const ImageCache& cache, const std::string& text) {
  std::vector<CachedImage> hits = cache.lookup(text);
  if (!hits.empty()) return hits;
  try {
    const RegistryImage ref = parse_registry_image(text);
    if (ref.canonical() != text) hits = cache.lookup(ref.canonical());
  } catch (const Error&) {
    // not a reference: a digest or a prefix, looked up above
  }
  return hits;
}

FoundImage find_image(const std::string& text, const Settings& settings, const fs::path& cwd) {
  std::optional<ImageSource> source;
  std::optional<Error> unparsed;
  try {
    source = parse_image_source(text);
  } catch (const Error& e) {
    unparsed = e;  // a digest prefix is no reference: looked up all the same
  }
  if (source && std::holds_alternative<SquashfsFile>(*source)) {
    return read_squashfs_file(std::get<SquashfsFile>(*source), cwd);
  }
  if (source && std::holds_alternative<OfflineImage>(*source)) {
    throw Error(Errc::invalid_argument, "'" + text + "' must be imported before it can run",
                "deepops-ctr import " + text + ", then start the image it prints");
  }
  // As Enroot's start takes it: IMAGE.sqsh, here, is that file (`import -o
  // IMAGE.sqsh` prints the name as given).
  if (has_squashfs_suffix(text) && access((cwd / text).c_str(), F_OK) == 0) {
    return read_squashfs_file(SquashfsFile{text}, cwd);
  }
  // The user's cache first, then the admin's read-only ones.
  std::vector<ImageCache> caches = {ImageCache(settings.cache_path)};
  for (const auto& dir : settings.system_caches) caches.emplace_back(dir, true);
  for (auto& cache : caches) {
    auto hits = lookup_image(cache, text);
    if (hits.size() > 1) {
      throw Error(Errc::invalid_argument, "'" + text + "' matches several images",
                  "give more of the digest (deepops-ctr list)");
    }
    if (hits.size() == 1) {
      if (!hits[0].read_only) cache.touch(hits[0].manifest_digest);
      return {hits[0].squashfs, hits[0].config, text, std::nullopt};
    }
  }
  const bool hex = std::all_of(text.begin(), text.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == ':';
  });
  if (unparsed && !hex) throw *unparsed;
  throw Error(Errc::not_found,
              "image '" + text + "' is not in the cache " + settings.cache_path.string(),
              "import it first: deepops-ctr import " + text);
}

}  // namespace deepops
