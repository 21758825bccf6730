#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "registry/manifest.hpp"

namespace deepops {

// What is stored beside each image: where it came from and how to run it.
struct CachedImage {
  std::string manifest_digest;
  std::string index_digest;
  std::vector<std::string> references;  // canonical names imported as this digest
  std::string served_by;                // registry (or mirror) it was pulled from
  int64_t size = 0;                     // bytes of the squashfs
  std::string imported_at;              // RFC 3339, UTC
  ImageConfig config;
  std::filesystem::path squashfs;
  bool read_only = false;  // from the admin's system cache
};

// A content-addressed image cache: images/<hex>.sqsh, with images/<hex>.json
// beside it as the commit marker. An entry exists only once its sidecar is
// renamed into place, after the image: a killed import leaves at most an
// orphan .sqsh or a tmp/ folder, never an entry that lies.
class ImageCache {
 public:
  explicit ImageCache(std::filesystem::path root, bool read_only = false);

  const std::filesystem::path& root() const { return root_; }
  std::optional<CachedImage> find(const std::string& manifest_digest) const;
  std::vector<CachedImage> list() const;  // newest first; damaged entries skipped
  // Entries that `name` designates: a reference as `list` shows it, a digest,
  // or a digest prefix of at least 6 hex digits.
  std::vector<CachedImage> lookup(const std::string& name) const;

  // The metadata file beside a standalone image (`import -o x.sqsh` writes
  // x.json), so that `start x.sqsh` knows its ENV and CMD.
  static std::optional<CachedImage> read_beside(const std::filesystem::path& squashfs);
  static void write_beside(const std::filesystem::path& squashfs, CachedImage meta);
  // Removes an entry (sidecar first, so it stops existing at once).
  bool remove(const std::string& manifest_digest);

  // A private scratch folder for one import of `digest`; stale ones from
  // killed imports of the same digest are removed (the caller holds its lock).
  std::filesystem::path make_scratch(const std::string& digest);
  // Exclusive per-digest lock: concurrent imports of one image wait here.
  class Lock;
  Lock lock(const std::string& digest);
  std::optional<Lock> try_lock(const std::string& digest);

  // Moves a finished image in and writes its sidecar (both fsynced).
  CachedImage publish(const std::filesystem::path& squashfs, CachedImage meta);
  // Records another name for an existing entry.
  void add_reference(const std::string& manifest_digest, const std::string& reference);
  // Marks an entry as just used (its sidecar's mtime), for gc's LRU order.
  void touch(const std::string& manifest_digest);

  struct GcResult {
    int images_removed = 0;
    int64_t bytes_freed = 0;
    int leftovers_removed = 0;  // scratch folders, orphan images, temp sidecars
    int64_t bytes_kept = 0;
  };
  // Removes what killed imports left behind and, with max_bytes, the least
  // recently used images until the rest fit. Skips any digest whose lock is
  // held: an import of it is running.
  GcResult gc(std::optional<int64_t> max_bytes);

 private:
  std::filesystem::path image_path(const std::string& digest, const char* ext) const;
  int open_lock_file(const std::string& digest);
  std::filesystem::path root_;
  bool read_only_;
};

class ImageCache::Lock {
 public:
  explicit Lock(int fd) : fd_(fd) {}
  Lock(Lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  Lock& operator=(Lock&&) = delete;
  ~Lock();

 private:
  int fd_;
};

}  // namespace deepops
