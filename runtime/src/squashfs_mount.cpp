#include "squashfs_mount.hpp"

#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

extern "C" {  // squashfuse's headers are plain C
#include <squashfuse/ll.h>
}

#include "deepops/error.hpp"
#include "deepops/unique_fd.hpp"
#include "fuse_server.hpp"

namespace deepops {
namespace {

constexpr int kFuseFd = 3;
constexpr int kImageFd = 4;

fuse_lowlevel_ops squashfs_ops() {
  fuse_lowlevel_ops ops{};
  ops.lookup = sqfs_ll_op_lookup;
  ops.forget = sqfs_ll_op_forget;
  ops.getattr = sqfs_ll_op_getattr;
  ops.readlink = sqfs_ll_op_readlink;
  ops.open = sqfs_ll_op_open;
  ops.read = sqfs_ll_op_read;
  ops.release = sqfs_ll_op_release;
  ops.opendir = sqfs_ll_op_opendir;
  ops.readdir = sqfs_ll_op_readdir;
  ops.releasedir = sqfs_ll_op_releasedir;
  ops.statfs = stfs_ll_op_statfs;
  ops.listxattr = sqfs_ll_op_listxattr;
  ops.getxattr = sqfs_ll_op_getxattr;
  ops.create = sqfs_ll_op_create;
  return ops;
}

// The server child: never returns.
[[noreturn]] void serve(sqfs_ll* ll, int fuse_fd, pid_t parent) {
  become_server_child(parent);
  prctl(PR_SET_NAME, "deepops-sqfs");
  if (dup2(fuse_fd, kFuseFd) < 0 || dup2(ll->fs.fd, kImageFd) < 0) _exit(1);
  ll->fs.fd = kImageFd;
  syscall(SYS_close_range, kImageFd + 1, ~0U, 0);
  // No reason to hold the caller's folders busy.
  if (chdir("/") != 0) _exit(1);

  char arg0[] = "deepops-sqfs";
  char* argv[] = {arg0, nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, argv);
  fuse_lowlevel_ops ops = squashfs_ops();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), ll);
  if (!se) _exit(1);
  // "/dev/fd/N" tells libfuse the device is already open and mounted.
  std::string dev = "/dev/fd/" + std::to_string(kFuseFd);
  if (fuse_session_mount(se, dev.c_str()) != 0) _exit(1);
  // Single-threaded: Debian's libsquashfuse_ll is built without the locks its
  // caches need for several threads (it corrupts its heap under load).
  int rc = fuse_session_loop(se);
  _exit(rc == 0 ? 0 : 1);
}

}  // namespace

void check_squashfs_file(const std::filesystem::path& image) {
  UniqueFd fd(open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    throw sys_error("cannot open image " + image.string(), errno,
                    "check the path, and that you may read it");
  }
  unsigned char sb[30] = {};
  ssize_t n = pread(fd.get(), sb, sizeof(sb), 0);
  bool magic = n == sizeof(sb) && std::memcmp(sb, "hsqs", 4) == 0;
  uint16_t major = static_cast<uint16_t>(sb[28] | (sb[29] << 8));
  if (!magic || major != 4) {
    throw Error(Errc::corrupt, image.string() + " is not a squashfs 4.0 image",
                "give an image imported by deepops-ctr, or a .sqsh made by mksquashfs");
  }
}

SquashfsMount::SquashfsMount(const std::filesystem::path& image,
                             const std::filesystem::path& mountpoint) {
  check_squashfs_file(image);
  sqfs_ll* ll = sqfs_ll_open(image.c_str(), 0);
  if (!ll) {
    throw Error(Errc::corrupt, "cannot read the squashfs image " + image.string(),
                "the file may be truncated; import the image again");
  }
  UniqueFd image_fd(ll->fs.fd);  // the server keeps its own copy
  // The server child inherits its own copy of `ll`; this process frees its
  // one (the file descriptor stays image_fd's to close).
  std::unique_ptr<sqfs_ll, void (*)(sqfs_ll*)> ll_copy(ll, [](sqfs_ll* p) {
    p->fs.fd = -1;
    sqfs_ll_destroy(p);
    std::free(p);
  });
  UniqueFd fuse = mount_fuse(mountpoint, "fuse.squashfuse", MS_NOSUID | MS_NODEV | MS_RDONLY);
  pid_t parent = getpid();
  server_ = fork();
  if (server_ < 0) throw sys_error("cannot start the squashfs server", errno);
  if (server_ == 0) serve(ll, fuse.get(), parent);
}

SquashfsMount::~SquashfsMount() { stop_server(server_); }

}  // namespace deepops
