#include "container/overlay_mount.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "container/fuse_server.hpp"
#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {
namespace {

constexpr const char* kFuseOverlayfs = "fuse-overlayfs";

// fuse-overlayfs from the system's folders, as packages install it: the
// caller's PATH (a job's) does not choose what serves the container's root.
std::string find_in_path(const std::string& name) {
  for (const auto* dir :
       {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    std::string candidate = std::string(dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

[[noreturn]] void exec_server(const std::string& binary, const std::string& options, int fuse_fd,
                              pid_t parent) {
  become_server_child(parent);
  if (dup2(fuse_fd, 3) < 0) _exit(127);
  // fuse-overlayfs 1.10 prints option notes on every start; its failures show
  // in the container as I/O errors anyway.
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
  }
  syscall(SYS_close_range, 4, ~0U, 0);
  // pivot_root moves every process of the mount namespace whose root is the
  // old root: in a namespace of its own, the server keeps seeing the host's
  // paths instead of its own mount (where it would wait on itself).
  if (unshare(CLONE_NEWNS) != 0 || chdir("/") != 0) _exit(127);
  std::string opts = options;
  char arg0[] = "fuse-overlayfs", f[] = "-f", o[] = "-o", dev[] = "/dev/fd/3";
  char* argv[] = {arg0, f, o, opts.data(), dev, nullptr};
  execv(binary.c_str(), argv);
  _exit(127);
}

}  // namespace

OverlayMount::OverlayMount(const std::vector<std::filesystem::path>& lowers,
                           const std::filesystem::path& upper, const std::filesystem::path& work,
                           const std::filesystem::path& target, OverlayKind kind) {
  std::string lowerdir;
  for (const auto& l : lowers) lowerdir += (lowerdir.empty() ? "" : ":") + l.string();
  for (const auto& dir : {lowerdir, upper.string(), work.string()}) {
    // The options' own separators: a folder named with one cannot be given.
    if (dir.find_first_of(",") != std::string::npos ||
        (dir != lowerdir && dir.find(':') != std::string::npos)) {
      throw Error(Errc::invalid_argument, "the overlay cannot use the folder " + dir,
                  "',' and ':' separate overlay options: set DATA_PATH or RUNTIME_PATH to a "
                  "folder without them");
    }
  }
  const std::string dirs =
      "lowerdir=" + lowerdir + ",upperdir=" + upper.string() + ",workdir=" + work.string();
  if (kind != OverlayKind::fuse) {
    // userxattr: trusted.* xattrs are out of reach in a user namespace.
    if (mount("overlay", target.c_str(), "overlay", MS_NOSUID, (dirs + ",userxattr").c_str()) == 0)
      return;
    int err = errno;
    bool kernel_cannot = err == EPERM || err == EINVAL || err == ENODEV;
    if (kind == OverlayKind::kernel || !kernel_cannot || find_in_path(kFuseOverlayfs).empty()) {
      std::string hint =
          err == ENOSPC || err == EDQUOT
              ? "the writable layer's folder " + upper.parent_path().string() +
                    " is out of space or inodes: free some there"
              : "`deepops-ctr check` tests overlayfs in a user namespace (Linux >= 5.11); "
                "older kernels need fuse-overlayfs installed";
      throw sys_error("cannot mount the overlay over the image", err, hint);
    }
  }
  start_fuse_overlayfs(dirs, target);
}

void OverlayMount::start_fuse_overlayfs(const std::string& options,
                                        const std::filesystem::path& target) {
  const std::string binary = find_in_path(kFuseOverlayfs);
  if (binary.empty()) {
    throw Error(Errc::not_found, "fuse-overlayfs is not installed",
                "install it (apt install fuse-overlayfs), or set DEEPOPS_OVERLAY=kernel");
  }
  UniqueFd fuse = deepops::mount_fuse(target, "fuse.fuse-overlayfs", MS_NOSUID | MS_NODEV);
  pid_t parent = getpid();
  server_ = fork();
  if (server_ < 0) throw sys_error("cannot start fuse-overlayfs", errno);
  if (server_ == 0) exec_server(binary, options, fuse.get(), parent);
}

OverlayMount::~OverlayMount() { stop_server(server_); }

}  // namespace deepops
