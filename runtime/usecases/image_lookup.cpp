// The lookups that never download: an image file, or an image already in a
// cache. Apart from images.cpp, whose imports bring libcurl and libarchive:
// deepops-ctr's lean build (start, list, remove) links this file only.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "usecases/images.hpp"
#include "util/error.hpp"

namespace deepops {
namespace fs = std::filesystem;

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
  // An offline or daemon image is read (saved) on import only: a daemon's
  // tag may name new content by now.
  if (source && (std::holds_alternative<OfflineImage>(*source) ||
                 std::holds_alternative<DaemonImage>(*source))) {
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
