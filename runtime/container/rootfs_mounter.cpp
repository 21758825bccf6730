#include "container/rootfs_mounter.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "util/error.hpp"

namespace deepops {
namespace {

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) out += "/" + parts[i];
  return out.empty() ? "/" : out;
}

bool is_dir_fd(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

void set_mount_attributes(int fd, bool recursive, bool read_only, unsigned long flags) {
  mount_attr attr{};
  if (read_only) attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID) attr.attr_set |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV) attr.attr_set |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC) attr.attr_set |= MOUNT_ATTR_NOEXEC;
  if (flags & MS_NODIRATIME) attr.attr_set |= MOUNT_ATTR_NODIRATIME;
  // The access-time mode is one field: cleared, then set (relatime is 0).
  if (flags & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) {
    attr.attr_clr |= MOUNT_ATTR__ATIME;
    if (flags & MS_NOATIME) {
      attr.attr_set |= MOUNT_ATTR_NOATIME;
    } else if (flags & MS_STRICTATIME) {
      attr.attr_set |= MOUNT_ATTR_STRICTATIME;
    }
  }
  if (attr.attr_set == 0 && attr.attr_clr == 0) return;
  unsigned at = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (mount_setattr(fd, "", at, &attr, sizeof(attr)) != 0) {
    int err = errno;
    throw sys_error("cannot set mount attributes", err,
                    err == EPERM && (attr.attr_clr & MOUNT_ATTR__ATIME)
                        ? "a user namespace cannot change the access-time mode (noatime, "
                          "nodiratime, relatime, strictatime) of a host mount"
                        : "");
  }
}

RootfsMounter::RootfsMounter(const std::filesystem::path& root) : root_path_(root) {
  root_.reset(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_) throw sys_error("cannot open the container root " + root.string(), errno);
}

UniqueFd RootfsMounter::open_in_root(const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_PATH | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path == "/" ? "." : path.substr(1);
  return UniqueFd(
      static_cast<int>(syscall(SYS_openat2, root_.get(), rel.c_str(), &how, sizeof(how))));
}

bool RootfsMounter::exists(const std::string& target) {
  return static_cast<bool>(open_in_root(target, 0));
}

std::optional<std::string> RootfsMounter::read_file(const std::string& target) {
  UniqueFd path = open_in_root(target, 0);
  if (!path) return std::nullopt;
  UniqueFd fd(open(fd_path(path.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd || !S_ISREG([&] {
        struct stat st {};
        fstat(fd.get(), &st);
        return st.st_mode;
      }())) {
    return std::nullopt;
  }
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0 && out.size() < (16u << 20)) {
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

namespace {
std::pair<std::string, std::string> split_parent(const std::string& path) {
  auto slash = path.rfind('/');
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}
}  // namespace

void RootfsMounter::symlink(const std::string& path, const std::string& target) {
  auto [dir, name] = split_parent(normalize_container_path(path, "symlink"));
  UniqueFd parent = resolve(dir, MountEntry::Create::dir, true);
  unlinkat(parent.get(), name.c_str(), 0);
  if (symlinkat(target.c_str(), parent.get(), name.c_str()) != 0) {
    throw sys_error("cannot create the symlink " + path + " in the container", errno);
  }
}

void RootfsMounter::write_file(const std::string& path, const std::string& content) {
  auto [dir, name] = split_parent(normalize_container_path(path, "file"));
  UniqueFd parent = resolve(dir, MountEntry::Create::dir, true);
  UniqueFd fd(openat(parent.get(), name.c_str(),
                     O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd ||
      ::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    throw sys_error("cannot write " + path + " in the container", errno);
  }
}

void RootfsMounter::create_path(const std::string& target, bool as_dir) {
  auto parts = components(target);
  for (size_t i = 1; i <= parts.size(); ++i) {
    std::string prefix = join(parts, i);
    if (open_in_root(prefix, 0)) continue;
    if (errno != ENOENT) throw sys_error("cannot resolve " + prefix + " in the container", errno);
    UniqueFd parent = open_in_root(join(parts, i - 1), O_DIRECTORY);
    if (!parent) throw sys_error("cannot resolve " + join(parts, i - 1), errno);
    bool last = i == parts.size();
    int rc;
    if (last && !as_dir) {
      rc = openat(parent.get(), parts[i - 1].c_str(),
                  O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (rc >= 0) close(rc);
    } else {
      rc = mkdirat(parent.get(), parts[i - 1].c_str(), 0755);
    }
    if (rc < 0 && errno != EEXIST) {
      throw sys_error("cannot create " + prefix + " in the container", errno,
                      "the image may have a file where a folder is needed");
    }
  }
}

UniqueFd RootfsMounter::resolve(const std::string& target, MountEntry::Create create,
                                bool source_is_dir) {
  UniqueFd fd = open_in_root(target, 0);
  if (!fd && errno == ENOENT && create != MountEntry::Create::none) {
    bool as_dir = create == MountEntry::Create::dir ||
                  (create == MountEntry::Create::automatic && source_is_dir);
    create_path(target, as_dir);
    fd = open_in_root(target, 0);
  }
  if (!fd) {
    int err = errno;
    throw sys_error("mount target " + target + " in the container", err,
                    err == ENOENT ? "add x-create=dir or x-create=file to create it" : "");
  }
  return fd;
}

void RootfsMounter::bind(const std::string& host_source, const std::string& target, bool recursive,
                         bool read_only, MountEntry::Create create, unsigned long flags) {
  if (host_source.empty() || host_source[0] != '/') {  // resolved by whoever parsed it
    throw Error(Errc::invalid_argument,
                "mount source '" + host_source + "' is not an absolute host path");
  }
  UniqueFd src(open(host_source.c_str(), O_PATH | O_CLOEXEC));
  if (!src) {
    throw sys_error("mount source " + host_source, errno,
                    "the path must exist on this node and be reachable by you");
  }
  bool src_dir = is_dir_fd(src.get());
  UniqueFd dst = resolve(target, create, src_dir);
  if (src_dir != is_dir_fd(dst.get())) {
    throw Error(
        Errc::invalid_argument,
        "cannot mount " + host_source + " on " + target + ": one is a folder, the other not",
        "pick a target of the same kind");
  }
  // glibc 2.42 and later declare the MS_ flags as an enum: no enum in ?:.
  unsigned long mflags = MS_BIND;
  if (recursive) mflags |= MS_REC;
  if (mount(fd_path(src.get()).c_str(), fd_path(dst.get()).c_str(), nullptr, mflags, nullptr) !=
      0) {
    throw sys_error("cannot bind " + host_source + " on " + target, errno);
  }
  constexpr unsigned long kPerMount =
      MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
  if (read_only || (flags & kPerMount)) {
    UniqueFd mounted = resolve(target, MountEntry::Create::none, src_dir);
    set_mount_attributes(mounted.get(), recursive, read_only, flags);
  }
}

void RootfsMounter::mount_fs(const std::string& type, const std::string& source,
                             const std::string& target, unsigned long flags,
                             const std::string& data, MountEntry::Create create) {
  UniqueFd dst = resolve(target, create, true);
  if (mount(source.c_str(), fd_path(dst.get()).c_str(), type.c_str(), flags,
            data.empty() ? nullptr : data.c_str()) != 0) {
    throw sys_error("cannot mount " + type + " on " + target, errno);
  }
}

void set_propagation(int fd, unsigned long types, unsigned long recursive) {
  // One call per type, in Enroot's order; each recursive when its r-form was asked.
  for (unsigned long type : {MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE}) {
    if (!(types & type)) continue;
    unsigned long flags = type;
    if (recursive & type) flags |= MS_REC;
    if (mount(nullptr, fd_path(fd).c_str(), nullptr, flags, nullptr) != 0) {
      throw sys_error("cannot set the mount propagation", errno);
    }
  }
}

void RootfsMounter::apply(const MountEntry& m) {
  try {
    if (m.detach) {
      UniqueFd dst = resolve(m.target, MountEntry::Create::none, true);
      if (umount2(fd_path(dst.get()).c_str(), MNT_DETACH) != 0)
        throw sys_error("cannot detach " + m.target, errno);
    } else if (m.move) {
      std::string from = normalize_container_path(m.source, "x-move source");
      UniqueFd src = resolve(from, MountEntry::Create::none, true);
      UniqueFd dst = resolve(m.target, m.create, is_dir_fd(src.get()));
      if (mount(fd_path(src.get()).c_str(), fd_path(dst.get()).c_str(), nullptr, MS_MOVE,
                nullptr) != 0)
        throw sys_error("cannot move " + from + " to " + m.target, errno);
    } else if (m.bind) {
      bind(m.source, m.target, m.recursive, m.read_only, m.create, m.flags | MS_NOSUID);
    } else {
      unsigned long flags = m.flags | MS_NOSUID | MS_NODEV;
      if (m.read_only) flags |= MS_RDONLY;
      mount_fs(m.type, m.source, m.target, flags, m.data, m.create);
    }
    if (m.propagation != 0 && !m.detach) {
      UniqueFd mounted = resolve(m.target, MountEntry::Create::none, true);
      set_propagation(mounted.get(), m.propagation, m.propagation_recursive);
    }
  } catch (const Error& e) {
    if (m.nofail) return;  // as Enroot's nofail: the entry is skipped
    throw Error(e.code(), m.origin + ": " + e.what(), e.hint());
  }
}

}  // namespace deepops
