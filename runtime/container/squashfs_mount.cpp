#include "container/squashfs_mount.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "container/fuse_server.hpp"
#include "container/squashfs_ops.hpp"
#include "util/error.hpp"
#include "util/unique_fd.hpp"

namespace deepops {
namespace {

using Session = std::unique_ptr<fuse_session, void (*)(fuse_session*)>;

// Opens a libfuse session on `fuse_fd` (a copy of it, which the session
// owns) and answers the kernel's INIT, the first request of every mount,
// here: each server forked afterwards starts from a session that has seen
// it, as libfuse answers any other request before INIT with an error.
Session answer_init(sqfs_ll* ll, int fuse_fd, const fuse_lowlevel_ops& ops) {
  char arg0[] = "deepops-sqfs";
  char* argv[] = {arg0, nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, argv);
  Session se(fuse_session_new(&args, &ops, sizeof(ops), ll), fuse_session_destroy);
  fuse_opt_free_args(&args);  // libfuse may have copied them; this process lives on
  if (!se) throw Error(Errc::internal, "cannot start a FUSE session for the image");
  UniqueFd own(fcntl(fuse_fd, F_DUPFD_CLOEXEC, 3));
  if (!own) throw sys_error("cannot copy the /dev/fuse descriptor", errno);
  // "/dev/fd/N" tells libfuse the device is already open and mounted.
  std::string dev = "/dev/fd/" + std::to_string(own.get());
  if (fuse_session_mount(se.get(), dev.c_str()) != 0) {
    throw Error(Errc::internal, "cannot attach the FUSE session to its mount");
  }
  own.release();  // fuse_session_destroy closes it
  fuse_buf buf{};
  int got;
  for (int tries = 0; (got = fuse_session_receive_buf(se.get(), &buf)) == -EINTR && tries < 100;
       ++tries) {
  }
  if (got <= 0) {
    std::free(buf.mem);
    throw sys_error("no INIT request from the kernel on the new FUSE mount", got < 0 ? -got : EIO);
  }
  fuse_session_process_buf(se.get(), &buf);
  std::free(buf.mem);
  return se;
}

// Closes every descriptor but `a` and `b`.
void close_all_except(int a, int b) {
  int lo = std::min(a, b), hi = std::max(a, b);
  if (lo > 0) syscall(SYS_close_range, 0U, static_cast<unsigned>(lo - 1), 0U);
  if (hi > lo + 1) {
    syscall(SYS_close_range, static_cast<unsigned>(lo + 1), static_cast<unsigned>(hi - 1), 0U);
  }
  syscall(SYS_close_range, static_cast<unsigned>(hi + 1), ~0U, 0U);
}

// A server child: never returns.
[[noreturn]] void serve(fuse_session* se, const sqfs_ll* ll, pid_t parent) {
  become_server_child(parent);
  prctl(PR_SET_NAME, "deepops-sqfs");
  close_all_except(fuse_session_fd(se), ll->fs.fd);
  // No reason to hold the caller's folders busy.
  if (chdir("/") != 0) _exit(1);
  int rc = fuse_session_loop(se);
  _exit(rc == 0 ? 0 : 1);
}

void stop_servers(const std::vector<pid_t>& servers) {
  for (pid_t pid : servers) kill(pid, SIGKILL);
  for (pid_t pid : servers) stop_server(pid);
}

}  // namespace

unsigned squashfs_server_count() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) return 1;
  return std::clamp(static_cast<unsigned>(CPU_COUNT(&cpus)), 1U, kMaxSquashfsServers);
}

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
  UniqueFd image_fd(ll->fs.fd);  // each server keeps its own copy
  // The servers inherit their own copies of `ll`; this process frees its
  // one (the file descriptor stays image_fd's to close).
  std::unique_ptr<sqfs_ll, void (*)(sqfs_ll*)> ll_copy(ll, [](sqfs_ll* p) {
    p->fs.fd = -1;
    sqfs_ll_destroy(p);
    std::free(p);
  });
  UniqueFd fuse = mount_fuse(mountpoint, "fuse.squashfuse", MS_NOSUID | MS_NODEV | MS_RDONLY);
  fuse_lowlevel_ops ops = squashfs_ops(*ll, ImageOwner{getuid(), getgid()});
  Session se = answer_init(ll, fuse.get(), ops);
  const pid_t parent = getpid();
  const unsigned count = squashfs_server_count();
  for (unsigned i = 0; i < count; ++i) {
    pid_t pid = fork();
    if (pid == 0) serve(se.get(), ll, parent);
    if (pid < 0) {
      int err = errno;
      stop_servers(servers_);
      throw sys_error("cannot start the squashfs server", err);
    }
    servers_.push_back(pid);
  }
}

SquashfsMount::~SquashfsMount() { stop_servers(servers_); }

}  // namespace deepops
