#include "image/importer.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "image/layer_stream.hpp"
#include "util/error.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

// A layer's compressed bytes, spooled to the scratch folder.
class SpoolFile : public BlobSink {
 public:
  explicit SpoolFile(fs::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) fail(errno);
  }
  ~SpoolFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;

  void write(const char* data, size_t size) override {
    while (size > 0) {
      ssize_t n = ::write(fd_, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(errno);
      data += n;
      size -= static_cast<size_t>(n);
    }
  }
  void restart() override {
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) fail(errno);
  }

 private:
  [[noreturn]] void fail(int err) {
    throw Error(err == ENOSPC || err == EDQUOT ? Errc::no_space : Errc::internal,
                "cannot write " + path_.string() + ": " + std::strerror(err),
                err == ENOSPC || err == EDQUOT
                    ? "free " + exhausted_resource(path_) +
                          " in the cache folder, run `deepops-ctr gc`, or set DEEPOPS_CACHE_PATH "
                          "elsewhere"
                    : "");
  }
  fs::path path_;
  int fd_ = -1;
};

std::string short_digest(const std::string& d) { return d.substr(0, 7 + 12); }

std::string megabytes(uint64_t bytes) {
  return std::to_string((bytes + 999'999) / 1'000'000) + " MB";
}

// The layers alone need their compressed size in the cache while they
// download: a cache that lacks it fails now, not after most of the download.
void require_space(const fs::path& dir, const std::string& image, int64_t layers_bytes) {
  struct statvfs fs_info {};
  if (::statvfs(dir.c_str(), &fs_info) != 0 || layers_bytes <= 0) return;  // writes will tell
  uint64_t available = static_cast<uint64_t>(fs_info.f_bavail) * fs_info.f_frsize;
  if (static_cast<uint64_t>(layers_bytes) <= available) return;
  throw Error(Errc::no_space,
              "No space left for " + image + ": its layers alone are " +
                  megabytes(static_cast<uint64_t>(layers_bytes)) + ", and the cache (" +
                  dir.parent_path().string() + ") has " + megabytes(available) + " free",
              "free space in the cache folder, run `deepops-ctr gc`, or set "
              "DEEPOPS_CACHE_PATH elsewhere");
}

// Downloads the layers with a small pool of threads; merge() waits for each.
class LayerDownloads {
 public:
  LayerDownloads(ImageOrigin& source, const std::vector<Descriptor>& layers, const fs::path& dir,
                 unsigned threads, const std::function<void(size_t, int64_t)>& on_bytes)
      : source_(source), layers_(layers), state_(layers.size(), State::pending) {
    for (size_t i = 0; i < layers.size(); ++i)
      paths_.push_back(dir / ("layer-" + std::to_string(i)));
    // Top layer first: the merge starts there.
    for (size_t i = layers.size(); i-- > 0;) queue_.push_back(i);
    unsigned n = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(layers.size())));
    for (unsigned t = 0; t < n; ++t) workers_.emplace_back([this, on_bytes] { run(on_bytes); });
  }
  ~LayerDownloads() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

  // Blocks until layer i is on disk; rethrows its download's error.
  const fs::path& wait(size_t i) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return state_[i] != State::pending || error_; });
    if (error_) std::rethrow_exception(error_);
    return paths_[i];
  }

 private:
  enum class State { pending, done };
  void run(const std::function<void(size_t, int64_t)>& on_bytes) {
    while (true) {
      size_t i;
      {
        std::lock_guard lock(mutex_);
        if (stop_ || error_ || queue_.empty()) return;
        i = queue_.front();
        queue_.erase(queue_.begin());
      }
      try {
        struct CountingSpool : SpoolFile {
          using SpoolFile::SpoolFile;
          const std::function<void(size_t, int64_t)>* report = nullptr;
          size_t layer = 0;
          const std::atomic<bool>* stop = nullptr;
          void write(const char* d, size_t n) override {
            // The import failed elsewhere: abort this transfer, don't finish it.
            if (*stop) throw Error(Errc::internal, "import abandoned");
            SpoolFile::write(d, n);
            (*report)(layer, static_cast<int64_t>(n));
          }
        } spool(paths_[i]);
        spool.report = &on_bytes;
        spool.layer = i;
        spool.stop = &stop_;
        source_.fetch_blob(layers_[i], spool);
        std::lock_guard lock(mutex_);
        state_[i] = State::done;
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      cv_.notify_all();
    }
  }

  ImageOrigin& source_;
  const std::vector<Descriptor>& layers_;
  std::vector<fs::path> paths_;
  std::vector<State> state_;
  std::vector<size_t> queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::exception_ptr error_;
  std::atomic<bool> stop_ = false;
  std::vector<std::thread> workers_;
};

// Removes the scratch folder however the import ends.
struct ScratchGuard {
  fs::path dir;
  ~ScratchGuard() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

class Reporter {
 public:
  Reporter(const ImportOptions& o, ImportProgress p) : fn_(o.progress), p_(std::move(p)) {}
  template <typename F>
  void update(F&& change) {
    std::lock_guard lock(mutex_);
    change(p_);
    if (fn_) fn_(p_);
  }

 private:
  std::function<void(const ImportProgress&)> fn_;
  ImportProgress p_;
  std::mutex mutex_;
};

std::optional<CachedImage> find_cached(const ImportOptions& o, const std::string& digest) {
  for (const auto& dir : o.system_caches) {
    if (auto c = ImageCache(dir, true).find(digest)) return c;
  }
  return ImageCache(o.cache).find(digest);
}

}  // namespace

ImportResult import_image(const RegistryImage& image, const ImportOptions& o) {
  auto source = registry_origin(image, o.registry, o.mirrors, o.warn);
  return import_image(*source, o);
}

ImportResult import_image(ImageOrigin& source, const ImportOptions& o) {
  using Phase = ImportProgress::Phase;
  ImportProgress start;
  start.image = source.reference();
  Reporter report(o, std::move(start));
  ResolvedImage resolved = source.resolve(o.platform);
  const std::string& digest = resolved.manifest_digest;

  ImageCache cache(o.cache);
  auto cached = [&](CachedImage c) {
    if (!c.read_only) {
      cache.add_reference(digest, source.reference());
      cache.touch(digest);  // most recently used, for gc
    }
    report.update([](ImportProgress& p) { p.phase = Phase::cached; });
    return ImportResult{std::move(c), true, {}};
  };
  if (auto c = find_cached(o, digest)) return cached(std::move(*c));
  ImageCache::Lock lock = cache.lock(digest);
  if (auto c = find_cached(o, digest)) return cached(std::move(*c));  // another process imported it

  ImageConfig config = parse_image_config(source.fetch_small_blob(resolved.manifest.config));
  const auto& layers = resolved.manifest.layers;
  for (const auto& l : layers)
    (void)layer_compression(l.media_type);  // refuse early, before downloading
  int64_t total = 0;
  for (const auto& l : layers) total += l.size;
  report.update([&](ImportProgress& p) {
    p.phase = Phase::downloading;
    p.layers = static_cast<int>(layers.size());
    p.bytes_total = total;
    p.layer_bytes.assign(layers.size(), 0);
    for (const auto& l : layers) p.layer_sizes.push_back(l.size);
  });

  ScratchGuard scratch{cache.make_scratch(digest)};
  require_space(scratch.dir, source.reference(), total);
  fs::path output = scratch.dir / "image.sqsh";
  SquashfsWriter writer(output, o.squashfs);
  LayerMerger merger(writer, o.owners, o.limits);
  {
    LayerDownloads downloads(source, layers, scratch.dir, o.parallel_downloads,
                             [&](size_t i, int64_t n) {
                               report.update([i, n](ImportProgress& p) {
                                 p.bytes_downloaded += n;
                                 p.layer_bytes[i] += n;
                               });
                             });
    for (size_t i = layers.size(); i-- > 0;) {
      const fs::path& path = downloads.wait(i);
      std::string name = "layer " + std::to_string(i + 1) + "/" + std::to_string(layers.size()) +
                         " (" + short_digest(layers[i].digest) + ")";
      report.update([](ImportProgress& p) {
        p.phase = Phase::merging;
        ++p.layers_downloaded;
      });
      LayerCompression compression = layer_compression(layers[i].media_type);
      merger.merge_layer([&] { return open_layer_tar(path, compression, name); }, name);
      fs::remove(path);
      report.update([](ImportProgress& p) { ++p.layers_merged; });
    }
  }
  merger.finish();
  report.update([](ImportProgress& p) { p.phase = Phase::writing; });
  writer.finish(merger.root());

  CachedImage meta;
  meta.manifest_digest = digest;
  meta.index_digest = resolved.index_digest;
  meta.references = {source.reference()};
  meta.served_by = source.served_by();
  meta.config = std::move(config);
  CachedImage published = cache.publish(output, std::move(meta));
  report.update([](ImportProgress& p) { p.phase = Phase::done; });
  return ImportResult{std::move(published), false, merger.stats()};
}

}  // namespace deepops
