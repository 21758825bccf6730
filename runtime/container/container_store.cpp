#include "container/container_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {
namespace fs = std::filesystem;
namespace {

void write_all(int fd, const char* data, size_t size, const fs::path& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sys_error("cannot write " + path.string(), errno);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// With read and write, so that a full disk says ENOSPC: libstdc++'s
// fs::copy_file reports sendfile's short write as EIO.
void copy_bytes(const fs::path& from, const fs::path& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw sys_error("cannot read " + from.string(), errno);
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out) throw sys_error("cannot create " + to.string(), errno);
  std::string buf(1 << 20, '\0');
  while (true) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sys_error("cannot read " + from.string(), errno);
    if (n == 0) break;
    write_all(out.get(), buf.data(), static_cast<size_t>(n), to);
  }
  if (::fsync(out.get()) != 0) throw sys_error("cannot write " + to.string(), errno);
}

void write_text(const fs::path& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw sys_error("cannot create " + path.string(), errno);
  write_all(fd.get(), text.data(), text.size(), path);
  if (::fsync(fd.get()) != 0) throw sys_error("cannot write " + path.string(), errno);
}

std::string now_utc() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Tells this machine's keepers from those of another node that shares the
// data folder: a pid means nothing across machines.
std::string this_boot() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::optional<nlohmann::json> read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// True while some process holds the container's run lock.
bool is_locked(const fs::path& lock) {
  UniqueFd fd(open(lock.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  return flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
}

}  // namespace

// Folders are opened up (0700) as the walk goes: overlay leaves work/work
// with mode 000, and every file here is the user's.
void remove_tree(const fs::path& p) {
  std::error_code ec;
  for (int attempt = 0; attempt < 2; ++attempt) {
    fs::remove_all(p, ec);
    if (!ec) return;
    for (auto it =
             fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) chmod(it->path().c_str(), 0700);
    }
    chmod(p.c_str(), 0700);
  }
  if (ec)
    throw Error(errc_from_errno(ec.value()), "cannot remove " + p.string() + ": " + ec.message());
}

ContainerStore::ContainerStore(fs::path data_path) : root_(std::move(data_path) / "containers") {}

bool ContainerStore::is_valid_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && name[0] != '.';
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-' || c == '+');
  }
  return ok;
}

void ContainerStore::validate_name(const std::string& name) {
  if (!is_valid_name(name)) {
    throw Error(Errc::invalid_argument, "invalid container name '" + name + "'",
                "use letters, digits, '.', '_', '-' and '+' (at most 128, not starting with '.')");
  }
}

// The new container's folder: upper/, work/, the image and container.json.
void ContainerStore::fill(const fs::path& tmp, const fs::path& squashfs, const std::string& name,
                          const std::string& image, const ImageConfig& config) const {
  fs::create_directories(tmp / "upper");
  fs::create_directories(tmp / "work");
  std::error_code ec;
  fs::create_hard_link(squashfs, tmp / "image.sqsh", ec);
  if (ec) copy_bytes(squashfs, tmp / "image.sqsh");  // another filesystem than the cache
  nlohmann::json j = {
      {"name", name}, {"image", image}, {"created_at", now_utc()}, {"config", config.to_json()}};
  write_text(tmp / "container.json", j.dump(2) + "\n");
}

std::string ContainerStore::space_hint(int err) const {
  if (err != ENOSPC && err != EDQUOT) return {};
  return "free " + exhausted_resource(root_) + " in " + root_.string() +
         ", or set DEEPOPS_DATA_PATH elsewhere";
}

NamedContainer ContainerStore::create(const std::string& name, const fs::path& squashfs,
                                      const std::string& image, const ImageConfig& config) {
  validate_name(name);
  fs::create_directories(root_);
  // The folder appears under its name only when complete.
  fs::path tmp = root_ / (".create." + name + "." + std::to_string(getpid()));
  fs::path dir = root_ / name;
  if (fs::exists(dir)) {
    throw Error(Errc::busy, "a container named '" + name + "' exists",
                "remove it first (deepops-ctr remove " + name + "), or pick another name");
  }
  try {
    fill(tmp, squashfs, name, image, config);
    if (rename(tmp.c_str(), dir.c_str()) != 0)
      throw sys_error("cannot create the container " + dir.string(), errno);
  } catch (const fs::filesystem_error& e) {
    std::string hint = space_hint(e.code().value());  // before the cleanup frees what ran out
    remove_tree(tmp);
    throw sys_error("cannot create the container " + dir.string(), e.code().value(), hint);
  } catch (const Error& e) {
    std::string hint = e.code() == Errc::no_space ? space_hint(ENOSPC) : "";
    remove_tree(tmp);
    if (e.code() != Errc::no_space) throw;
    throw Error(Errc::no_space, e.what(), hint);
  }
  auto made = find(name);
  if (!made)
    throw Error(Errc::internal, "the container " + dir.string() + " vanished as it was made");
  return *made;
}

std::optional<NamedContainer> ContainerStore::find(const std::string& name) const {
  validate_name(name);
  fs::path dir = root_ / name;
  auto j = read_json(dir / "container.json");
  if (!j) return std::nullopt;
  NamedContainer c;
  c.name = name;
  c.dir = dir;
  c.squashfs = dir / "image.sqsh";
  c.image = j->value("image", "");
  c.created_at = j->value("created_at", "");
  c.config = ImageConfig::from_json(j->value("config", nlohmann::json::object()));
  if (is_locked(dir / "lock")) {
    if (auto k = read_json(dir / "keeper.json")) {
      std::string boot = k->value("boot_id", "");
      if (!boot.empty() && boot != this_boot()) {
        c.running_elsewhere = true;
      } else {
        c.keeper = k->value("pid", 0);
        c.remap_root = k->value("remap_root", false);
      }
    }
  }
  return c;
}

std::vector<NamedContainer> ContainerStore::list() const {
  std::vector<NamedContainer> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(".")) continue;
    if (auto c = find(name)) out.push_back(std::move(*c));
  }
  std::sort(out.begin(), out.end(),
            [](const NamedContainer& a, const NamedContainer& b) { return a.name < b.name; });
  return out;
}

void ContainerStore::remove(const std::string& name) {
  auto c = find(name);
  if (!c) throw Error(Errc::not_found, "no container named '" + name + "'");
  if (is_locked(c->dir / "lock")) {
    throw Error(Errc::busy, "container '" + name + "' is running",
                "stop its command first, then remove it");
  }
  fs::path doomed = root_ / (".remove." + name + "." + std::to_string(getpid()));
  if (rename(c->dir.c_str(), doomed.c_str()) != 0) {
    throw sys_error("cannot remove " + c->dir.string(), errno);
  }
  remove_tree(doomed);
}

ContainerStore::RunLock ContainerStore::lock_for_run(const NamedContainer& c) const {
  UniqueFd lock(open((c.dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) throw sys_error("cannot open " + (c.dir / "lock").string(), errno);
  if (flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    auto again = find(c.name);
    std::string pid = again && again->keeper ? " (pid " + std::to_string(*again->keeper) + ")" : "";
    throw Error(Errc::busy, "container '" + c.name + "' is already running" + pid,
                "run more commands in it with: deepops-ctr exec " + c.name + " COMMAND");
  }
  unlink((c.dir / "keeper.json").c_str());
  UniqueFd dir(open(c.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  return RunLock(std::move(lock), std::move(dir), this_boot());
}

void ContainerStore::RunLock::publish_keeper(pid_t pid, bool remap_root) const {
  std::string text =
      nlohmann::json{{"pid", pid}, {"remap_root", remap_root}, {"boot_id", boot_id_}}.dump() + "\n";
  UniqueFd fd(
      openat(dir_.get(), "keeper.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd || write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      renameat(dir_.get(), "keeper.json.tmp", dir_.get(), "keeper.json") != 0) {
    throw sys_error("cannot record the container's keeper", errno);
  }
}

}  // namespace deepops
