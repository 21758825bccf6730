#include "image/image_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/digest.hpp"
#include "util/error.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

std::string hex_of(const std::string& digest) {
  if (!is_sha256_digest(digest))
    throw Error(Errc::invalid_argument, "not a sha256 digest: '" + digest + "'");
  return digest.substr(7);
}

[[noreturn]] void io_error(const std::string& what, const fs::path& path, int err) {
  Errc code = err == ENOSPC || err == EDQUOT                  ? Errc::no_space
              : err == EACCES || err == EPERM || err == EROFS ? Errc::permission_denied
                                                              : Errc::internal;
  std::string hint = code == Errc::no_space
                         ? "free " + exhausted_resource(path.parent_path()) + " in " +
                               path.parent_path().string() +
                               ", run `deepops-ctr gc`, or set DEEPOPS_CACHE_PATH elsewhere"
                         : "";
  throw Error(code, what + " " + path.string() + ": " + std::strerror(err), hint);
}

void fsync_path(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) io_error("cannot open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) io_error("cannot fsync", path, err);
}

void write_file_synced(const fs::path& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("cannot create", path, errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      io_error("cannot write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) io_error("cannot fsync", path, err);
}

std::string now_rfc3339() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json to_json(const CachedImage& c) {
  return {{"manifest_digest", c.manifest_digest},
          {"index_digest", c.index_digest},
          {"references", c.references},
          {"served_by", c.served_by},
          {"size", c.size},
          {"imported_at", c.imported_at},
          {"config", c.config.to_json()}};
}

std::optional<CachedImage> read_sidecar(const fs::path& json_path, const fs::path& sqsh,
                                        bool read_only) {
  std::ifstream in(json_path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  std::error_code ec;
  if (j.is_discarded() || !j.is_object() || !fs::is_regular_file(sqsh, ec)) return std::nullopt;
  try {
    CachedImage c;
    c.manifest_digest = j.at("manifest_digest").get<std::string>();
    c.index_digest = j.value("index_digest", "");
    c.references = j.value("references", std::vector<std::string>{});
    c.served_by = j.value("served_by", "");
    c.size = j.value("size", int64_t{0});
    c.imported_at = j.value("imported_at", "");
    c.config = ImageConfig::from_json(j.value("config", nlohmann::json::object()));
    c.squashfs = sqsh;
    c.read_only = read_only;
    if (fs::file_size(sqsh, ec) != static_cast<uintmax_t>(c.size))
      return std::nullopt;  // not what was published
    return c;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

ImageCache::Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

ImageCache::ImageCache(fs::path root, bool read_only)
    : root_(std::move(root)), read_only_(read_only) {}

fs::path ImageCache::image_path(const std::string& digest, const char* ext) const {
  return root_ / "images" / (hex_of(digest) + ext);
}

std::optional<CachedImage> ImageCache::find(const std::string& digest) const {
  return read_sidecar(image_path(digest, ".json"), image_path(digest, ".sqsh"), read_only_);
}

std::vector<CachedImage> ImageCache::list() const {
  std::vector<CachedImage> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ / "images", ec)) {
    if (entry.path().extension() != ".json") continue;
    fs::path sqsh = entry.path();
    sqsh.replace_extension(".sqsh");
    if (auto c = read_sidecar(entry.path(), sqsh, read_only_)) out.push_back(std::move(*c));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.imported_at > b.imported_at; });
  return out;
}

std::vector<CachedImage> ImageCache::lookup(const std::string& name) const {
  std::vector<CachedImage> hits;
  std::string hex = name.starts_with("sha256:") ? name.substr(7) : name;
  for (auto& img : list()) {
    const auto& refs = img.references;
    bool by_ref = std::find(refs.begin(), refs.end(), name) != refs.end();
    bool by_digest = hex.size() >= 6 && img.manifest_digest.substr(7).starts_with(hex);
    if (by_ref || by_digest) hits.push_back(std::move(img));
  }
  return hits;
}

std::optional<CachedImage> ImageCache::read_beside(const fs::path& squashfs) {
  fs::path json = squashfs;
  json.replace_extension(".json");
  return read_sidecar(json, squashfs, true);
}

void ImageCache::write_beside(const fs::path& squashfs, CachedImage meta) {
  fs::path json = squashfs;
  json.replace_extension(".json");
  std::error_code ec;
  meta.size = static_cast<int64_t>(fs::file_size(squashfs, ec));
  write_file_synced(json, to_json(meta).dump(2) + "\n");
}

bool ImageCache::remove(const std::string& digest) {
  std::error_code ec;
  bool existed = fs::remove(image_path(digest, ".json"), ec);
  fs::remove(image_path(digest, ".sqsh"), ec);
  return existed;
}

fs::path ImageCache::make_scratch(const std::string& digest) {
  std::string hex = hex_of(digest);
  fs::path tmp = root_ / "tmp";
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) io_error("cannot create", tmp, ec.value());
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    if (entry.path().filename().string().starts_with(hex + ".")) fs::remove_all(entry.path(), ec);
  }
  fs::path scratch = tmp / (hex + "." + std::to_string(::getpid()));
  fs::create_directories(scratch, ec);
  if (ec) io_error("cannot create", scratch, ec.value());
  return scratch;
}

int ImageCache::open_lock_file(const std::string& digest) {
  fs::path dir = root_ / "locks";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) io_error("cannot create", dir, ec.value());
  fs::path path = dir / (hex_of(digest) + ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) io_error("cannot open", path, errno);
  return fd;
}

ImageCache::Lock ImageCache::lock(const std::string& digest) {
  int fd = open_lock_file(digest);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    io_error("cannot lock", root_ / "locks", err);
  }
  return Lock(fd);
}

std::optional<ImageCache::Lock> ImageCache::try_lock(const std::string& digest) {
  int fd = open_lock_file(digest);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  return Lock(fd);
}

void ImageCache::touch(const std::string& digest) {
  if (read_only_) return;
  std::error_code ec;
  fs::last_write_time(image_path(digest, ".json"), fs::file_time_type::clock::now(), ec);
}

namespace {

// "sha256:<hex>" from a cache file name such as "<hex>.sqsh" or "<hex>.1234".
std::string digest_of_name(const std::string& name) {
  std::string hex = name.substr(0, name.find('.'));
  return is_sha256_digest("sha256:" + hex) ? "sha256:" + hex : "";
}

int64_t size_of(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    int64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(p, ec)) {
      if (e.is_regular_file(ec)) total += static_cast<int64_t>(e.file_size(ec));
    }
    return total;
  }
  auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

}  // namespace

ImageCache::GcResult ImageCache::gc(std::optional<int64_t> max_bytes) {
  if (read_only_)
    throw Error(Errc::permission_denied, "the cache " + root_.string() + " is read-only");
  GcResult r;
  std::error_code ec;
  // Leftovers: scratch of dead imports, images without a sidecar, temp sidecars.
  std::vector<fs::path> leftovers;
  for (const auto& e : fs::directory_iterator(root_ / "tmp", ec)) leftovers.push_back(e.path());
  for (const auto& e : fs::directory_iterator(root_ / "images", ec)) {
    fs::path p = e.path();
    fs::path json = p.parent_path() / (p.stem().string() + ".json");
    fs::path sqsh = p.parent_path() / (p.stem().string() + ".sqsh");
    bool orphan_image = p.extension() == ".sqsh" && !fs::exists(json, ec);
    bool orphan_sidecar = p.extension() == ".json" && !fs::exists(sqsh, ec);
    if (p.extension() == ".tmp" || orphan_image || orphan_sidecar) leftovers.push_back(p);
  }
  for (const auto& p : leftovers) {
    std::string digest = digest_of_name(p.filename().string());
    if (digest.empty()) continue;  // not ours
    auto held = try_lock(digest);
    if (!held) continue;  // an import of this digest is running
    if (p.extension() == ".sqsh" && fs::exists(image_path(digest, ".json"), ec))
      continue;  // published meanwhile
    r.bytes_freed += size_of(p);
    fs::remove_all(p, ec);
    ++r.leftovers_removed;
  }
  // Images, least recently used first.
  auto images = list();
  // Each sidecar's mtime once, not once per comparison.
  std::vector<std::pair<fs::file_time_type, CachedImage>> by_use;
  for (auto& c : images) {
    by_use.emplace_back(fs::last_write_time(image_path(c.manifest_digest, ".json"), ec),
                        std::move(c));
  }
  std::sort(by_use.begin(), by_use.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  images.clear();
  for (auto& [when, c] : by_use) images.push_back(std::move(c));
  int64_t total = 0;
  for (const auto& c : images) total += c.size;
  for (const auto& c : images) {
    if (!max_bytes || total <= *max_bytes) break;
    auto held = try_lock(c.manifest_digest);
    if (!held) continue;
    remove(c.manifest_digest);
    total -= c.size;
    r.bytes_freed += c.size;
    ++r.images_removed;
  }
  r.bytes_kept = total;
  return r;
}

CachedImage ImageCache::publish(const fs::path& squashfs, CachedImage meta) {
  if (read_only_)
    throw Error(Errc::permission_denied, "the cache " + root_.string() + " is read-only");
  fs::path images = root_ / "images";
  std::error_code ec;
  fs::create_directories(images, ec);
  if (ec) io_error("cannot create", images, ec.value());
  fs::path sqsh = image_path(meta.manifest_digest, ".sqsh");
  fs::path json = image_path(meta.manifest_digest, ".json");
  fsync_path(squashfs, O_RDONLY);
  meta.size = static_cast<int64_t>(fs::file_size(squashfs));
  meta.imported_at = now_rfc3339();
  fs::rename(squashfs, sqsh, ec);
  if (ec) io_error("cannot move the image into", images, ec.value());
  fs::path tmp_json = json;
  tmp_json += ".tmp";
  write_file_synced(tmp_json, to_json(meta).dump(1));
  fs::rename(tmp_json, json, ec);  // the commit point
  if (ec) io_error("cannot publish", json, ec.value());
  fsync_path(images, O_RDONLY | O_DIRECTORY);
  meta.squashfs = sqsh;
  return meta;
}

void ImageCache::add_reference(const std::string& digest, const std::string& reference) {
  auto c = find(digest);
  if (!c || read_only_) return;
  if (std::find(c->references.begin(), c->references.end(), reference) != c->references.end())
    return;
  c->references.push_back(reference);
  fs::path json = image_path(digest, ".json");
  fs::path tmp_json = json;
  tmp_json += ".tmp";
  write_file_synced(tmp_json, to_json(*c).dump(1));
  std::error_code ec;
  fs::rename(tmp_json, json, ec);
  if (ec) io_error("cannot update", json, ec.value());
}

}  // namespace deepops
