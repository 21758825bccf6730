#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "image/image_cache.hpp"
#include "image/image_origin.hpp"
#include "image/layer_merge.hpp"
#include "image/squashfs_writer.hpp"
#include "registry/image_ref.hpp"
#include "registry/manifest.hpp"
#include "registry/registry_client.hpp"

namespace deepops {

// What an import reports as it goes, for progress bars and logs.
struct ImportProgress {
  enum class Phase { resolving, cached, downloading, merging, writing, done };
  Phase phase = Phase::resolving;
  std::string image;  // canonical name
  int layers = 0;     // total
  int layers_downloaded = 0;
  int layers_merged = 0;
  int64_t bytes_total = 0;  // compressed, all layers
  int64_t bytes_downloaded = 0;
  std::vector<int64_t> layer_sizes;  // per layer, in manifest order (bottom first)
  std::vector<int64_t> layer_bytes;  // downloaded so far, per layer
};

struct ImportOptions {
  RegistryOptions registry;
  Platform platform = host_platform();
  SquashfsOptions squashfs;
  OwnerMapping owners = OwnerMapping::root;
  MergeLimits limits;  // IMPORT_MAX_SIZE, IMPORT_MAX_ENTRIES
  unsigned parallel_downloads = 4;
  std::filesystem::path cache;  // the user's image cache (Settings::cache_path)
  // Admin-populated read-only caches, consulted before `cache`.
  std::vector<std::filesystem::path> system_caches;
  std::function<void(const ImportProgress&)> progress;  // called from several threads, serialised
  MirrorConfig mirrors;                                 // registry mirrors, tried before registries
  std::function<void(const std::string&)> warn;         // non-fatal notes (a mirror passed over)
};

struct ImportResult {
  CachedImage image;
  bool from_cache = false;
  MergeStats stats;
};

// Imports a registry image into the cache (or finds it there): the manifest
// digest decides whether anything is downloaded at all. Layers download in
// parallel into scratch files, each verified against its digest while it
// streams, and are merged top-down into one squashfs as soon as each is
// ready; no layer is ever extracted to disk. Concurrent imports of one image
// on a node wait on a per-digest lock and share the result. Any failure
// leaves the cache as it was and throws deepops::Error.
ImportResult import_image(const RegistryImage& image, const ImportOptions& options);
// The same from any source (a registry, or an offline OCI layout).
ImportResult import_image(ImageOrigin& source, const ImportOptions& options);

}  // namespace deepops
