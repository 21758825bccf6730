#include "container/squashfs_mount.hpp"

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
#include <limits>
#include <memory>
#include <string>

extern "C" {  // squashfuse's headers are plain C
#include <squashfuse/ll.h>
// Exported by libsquashfuse since its first releases, declared in a header
// that Debian does not install (fuseprivate.h): fills `st` from an inode.
sqfs_err sqfs_stat(sqfs* fs, sqfs_inode* inode, struct stat* st);
}

#include "container/fuse_server.hpp"
#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {
namespace {

constexpr int kFuseFd = 3;
constexpr int kImageFd = 4;

// The server child's one piece of state: who owns the image's root-owned
// files. Set once in the child before it serves; never in the keeper.
struct ImageOwner {
  uid_t uid = 0;
  gid_t gid = 0;
};
ImageOwner image_owner;

// The image is read-only: what the kernel caches never goes stale.
constexpr double kAttrTimeout = std::numeric_limits<double>::max();

void give_to_owner(struct stat& st) {
  if (st.st_uid == 0) st.st_uid = image_owner.uid;
  if (st.st_gid == 0) st.st_gid = image_owner.gid;
}

// libsquashfuse_ll's getattr and lookup, with the owners given to the user:
// the only two replies that carry an owner. Kept to the library's public
// calls and sqfs_stat, in the library's order.
void getattr_as_owner(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, ino) != SQFS_OK) return;  // it has replied ENOENT
  struct stat st {};
  if (sqfs_stat(&lli.ll->fs, &lli.inode, &st) != SQFS_OK) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  st.st_ino = ino;
  give_to_owner(st);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

void lookup_as_owner(fuse_req_t req, fuse_ino_t parent, const char* name) {
  sqfs_ll_i lli;
  if (sqfs_ll_iget(req, &lli, parent) != SQFS_OK) return;
  if (!S_ISDIR(lli.inode.base.mode)) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  sqfs_name namebuf;
  sqfs_dir_entry entry;
  sqfs_dentry_init(&entry, namebuf);
  bool found = false;
  if (sqfs_dir_lookup(&lli.ll->fs, &lli.inode, name, std::strlen(name), &entry, &found) !=
      SQFS_OK) {
    fuse_reply_err(req, EIO);
    return;
  }
  sqfs_inode inode;
  if (!found || sqfs_inode_get(&lli.ll->fs, &inode, sqfs_dentry_inode(&entry)) != SQFS_OK) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  if (sqfs_stat(&lli.ll->fs, &inode, &e.attr) != SQFS_OK) {
    fuse_reply_err(req, EIO);
    return;
  }
  e.attr_timeout = e.entry_timeout = kAttrTimeout;
  e.ino = lli.ll->ino_register(lli.ll, &entry);
  e.attr.st_ino = e.ino;
  give_to_owner(e.attr);
  fuse_reply_entry(req, &e);
}

fuse_lowlevel_ops squashfs_ops(bool translate_owner) {
  fuse_lowlevel_ops ops{};
  ops.lookup = translate_owner ? lookup_as_owner : sqfs_ll_op_lookup;
  ops.forget = sqfs_ll_op_forget;
  ops.getattr = translate_owner ? getattr_as_owner : sqfs_ll_op_getattr;
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
[[noreturn]] void serve(sqfs_ll* ll, int fuse_fd, pid_t parent, ImageOwner owner) {
  become_server_child(parent);
  image_owner = owner;
  prctl(PR_SET_NAME, "deepops-sqfs");
  if (dup2(fuse_fd, kFuseFd) < 0 || dup2(ll->fs.fd, kImageFd) < 0) _exit(1);
  ll->fs.fd = kImageFd;
  syscall(SYS_close_range, kImageFd + 1, ~0U, 0);
  // No reason to hold the caller's folders busy.
  if (chdir("/") != 0) _exit(1);

  char arg0[] = "deepops-sqfs";
  char* argv[] = {arg0, nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, argv);
  fuse_lowlevel_ops ops = squashfs_ops(owner.uid != 0 || owner.gid != 0);
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
  // Images keep root (0:0) as the owner of their files; they belong to
  // whoever the caller is in its namespace (the user, or root when remapped).
  const ImageOwner owner{getuid(), getgid()};
  server_ = fork();
  if (server_ < 0) throw sys_error("cannot start the squashfs server", errno);
  if (server_ == 0) serve(ll, fuse.get(), parent, owner);
}

SquashfsMount::~SquashfsMount() { stop_server(server_); }

}  // namespace deepops
