#include "container/system_check.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

namespace deepops {
namespace fs = std::filesystem;
namespace {

using Status = CheckResult::Status;

std::optional<std::string> read_trimmed(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return std::nullopt;
  std::string s;
  std::getline(in, s);
  return s;
}

std::optional<long> read_number(const fs::path& p) {
  auto s = read_trimmed(p);
  if (!s) return std::nullopt;
  try {
    return std::stol(*s);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool has_filesystem(const fs::path& proc, const std::string& name) {
  std::ifstream in(proc / "filesystems");
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.rfind('\t');
    std::string fs_name = tab == std::string::npos ? line : line.substr(tab + 1);
    if (fs_name == name) return true;
  }
  return false;
}

CheckResult max_user_namespaces(const fs::path& proc) {
  CheckResult r{"max_user_namespaces", Status::ok, "", ""};
  auto n = read_number(proc / "sys/user/max_user_namespaces");
  if (!n) {
    r.status = Status::fail;
    r.detail = "the kernel has no user namespaces (CONFIG_USER_NS)";
    r.fix = "use a kernel built with CONFIG_USER_NS=y";
  } else if (*n == 0) {
    r.status = Status::fail;
    r.detail = "user.max_user_namespaces = 0";
    r.fix = "sysctl -w user.max_user_namespaces=65536 (and set it in /etc/sysctl.d/)";
  } else {
    r.detail = std::to_string(*n);
  }
  return r;
}

CheckResult debian_userns_clone(const fs::path& proc) {
  CheckResult r{"unprivileged_userns_clone", Status::ok, "not restricted", ""};
  auto n = read_number(proc / "sys/kernel/unprivileged_userns_clone");
  if (n && *n == 0) {
    r.status = Status::fail;
    r.detail = "kernel.unprivileged_userns_clone = 0";
    r.fix = "sysctl -w kernel.unprivileged_userns_clone=1 (and set it in /etc/sysctl.d/)";
  } else if (n) {
    r.detail = "kernel.unprivileged_userns_clone = " + std::to_string(*n);
  }
  return r;
}

CheckResult apparmor_userns(const fs::path& proc) {
  CheckResult r{"AppArmor user namespace restriction", Status::ok, "not restricted", ""};
  auto n = read_number(proc / "sys/kernel/apparmor_restrict_unprivileged_userns");
  if (n && *n == 1) {
    r.status = Status::fail;
    r.detail = "kernel.apparmor_restrict_unprivileged_userns = 1 (Ubuntu 23.10+)";
    r.fix =
        "allow user namespaces to deepops-ctr with an AppArmor profile, e.g. "
        "/etc/apparmor.d/deepops-ctr: `abi <abi/4.0>, profile deepops-ctr "
        "/usr/bin/deepops-ctr flags=(unconfined) { userns, }` then apparmor_parser -r it; "
        "or, for all programs: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0";
  }
  return r;
}

CheckResult kernel_version() {
  CheckResult r{"kernel >= 5.11 (overlay in a user namespace)", Status::ok, "", ""};
  utsname u{};
  uname(&u);
  r.detail = u.release;
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  if (major < 5 || (major == 5 && minor < 11)) {
    r.status = Status::warn;
    r.fix = "Linux < 5.11: containers fall back to fuse-overlayfs (install it), which is slower";
  }
  return r;
}

CheckResult filesystem_support(const fs::path& proc, const std::string& name,
                               const std::string& module) {
  CheckResult r{name + " filesystem", Status::ok, "available", ""};
  if (!has_filesystem(proc, name)) {
    r.status = Status::fail;
    r.detail = "not in /proc/filesystems";
    r.fix = "modprobe " + module + " (and list it in /etc/modules-load.d/)";
  }
  return r;
}

CheckResult dev_fuse(const fs::path& path) {
  CheckResult r{"/dev/fuse usable by users", Status::ok, "", ""};
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) {
    r.status = Status::fail;
    r.detail = path.string() + " is missing";
    r.fix = "modprobe fuse";
    return r;
  }
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
  r.detail = std::string("mode ") + mode;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
  } else {
    r.status = Status::fail;
    r.detail += std::string(": ") + std::strerror(errno);
    r.fix =
        "chmod 0666 /dev/fuse, and keep it so with a udev rule: "
        "KERNEL==\"fuse\", MODE=\"0666\" in /etc/udev/rules.d/99-fuse.rules";
  }
  if (r.status == Status::ok && (st.st_mode & 0006) != 0006) {
    r.status = Status::warn;
    r.detail += " (you can open it, but other users may not)";
    r.fix = "chmod 0666 /dev/fuse for all users (udev rule: KERNEL==\"fuse\", MODE=\"0666\")";
  }
  return r;
}

// Runs `probe` in a forked child; returns 0 or the errno it failed with.
int in_child(const std::function<int()>& probe) {
  pid_t pid = fork();
  if (pid < 0) return errno;
  if (pid == 0) _exit(probe());
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
}

bool write_file(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

int enter_userns() {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return errno;
  if (!write_file("/proc/self/setgroups", "deny") ||
      !write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
      !write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1")) {
    return errno ? errno : EPERM;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) return errno;
  return 0;
}

// A tmpfs on /tmp, private to the child's mount namespace.
int scratch_tmpfs() {
  if (mount("tmpfs", "/tmp", "tmpfs", 0, "mode=0700") != 0) return errno;
  for (const char* d : {"/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m"}) mkdir(d, 0700);
  return 0;
}

CheckResult live_check(const std::string& name, const std::function<int()>& probe,
                       const std::string& fix) {
  CheckResult r{name, Status::ok, "works", ""};
  int err = in_child(probe);
  if (err != 0) {
    r.status = Status::fail;
    r.detail = std::strerror(err);
    r.fix = fix;
  }
  return r;
}

}  // namespace

const char* to_string(CheckResult::Status s) {
  switch (s) {
    case Status::ok:
      return "OK";
    case Status::warn:
      return "WARN";
    case Status::fail:
      return "FAIL";
  }
  return "?";
}

std::vector<CheckResult> run_system_checks(const SystemCheckOptions& o) {
  std::vector<CheckResult> out = {
      max_user_namespaces(o.proc),
      debian_userns_clone(o.proc),
      apparmor_userns(o.proc),
      kernel_version(),
      filesystem_support(o.proc, "fuse", "fuse"),
      filesystem_support(o.proc, "overlay", "overlay"),
      dev_fuse(o.dev_fuse),
  };
  if (!o.live) return out;
  out.push_back(live_check(
      "user + mount namespace as you", enter_userns,
      "see the user namespace lines above; on RHEL 7 also: sysctl user.max_user_namespaces"));
  const std::string dev = o.dev_fuse.string();
  out.push_back(live_check(
      "FUSE mount in a user namespace",
      [dev] {
        if (int e = enter_userns()) return e;
        if (int e = scratch_tmpfs()) return e;
        int fd = open(dev.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) return errno;
        std::string opts = "fd=" + std::to_string(fd) + ",rootmode=40000,user_id=0,group_id=0";
        if (mount("probe", "/tmp/m", "fuse.probe", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
          return errno;
        return 0;
      },
      "needs Linux >= 4.18 and a usable /dev/fuse (see above)"));
  out.push_back(live_check(
      "overlayfs in a user namespace",
      [] {
        if (int e = enter_userns()) return e;
        if (int e = scratch_tmpfs()) return e;
        const char* opts = "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w,userxattr";
        if (mount("overlay", "/tmp/m", "overlay", 0, opts) != 0) return errno;
        return 0;
      },
      "needs Linux >= 5.11; otherwise install fuse-overlayfs"));
  return out;
}

}  // namespace deepops
