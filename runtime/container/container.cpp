// run_container: one process ("the keeper") makes a user and a mount
// namespace, serves the squashfs over FUSE from a forked child, stacks an
// overlay on it, mounts the system and user mounts, pivots into it and forks
// the command. See runtime/README.md ("Start") for why each step is so.
#include "container/container.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <tuple>

#include "container/admin_hooks.hpp"
#include "container/id_call_filter.hpp"
#include "container/keeper_join.hpp"
#include "container/overlay_mount.hpp"
#include "container/passwd.hpp"
#include "container/rootfs_mounter.hpp"
#include "container/shared_image.hpp"
#include "container/squashfs_mount.hpp"
#include "image/image_cache.hpp"
#include "image/tree_snapshot.hpp"
#include "util/error.hpp"
#include "util/unique_fd.hpp"

extern char** environ;

namespace deepops {
namespace fs = std::filesystem;
namespace {

constexpr auto kNone = MountEntry::Create::none;
constexpr auto kFile = MountEntry::Create::file;
constexpr auto kDir = MountEntry::Create::dir;

void write_text(const fs::path& path, const std::string& text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd || write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw sys_error("cannot write " + path.string(), errno);
  }
}

// A private, empty folder that the keeper mounts a tmpfs on. The host only
// ever sees an empty folder, which is removed before the command runs.
class ScratchDir {
 public:
  explicit ScratchDir(const fs::path& base) {
    ensure_private_base(base);
    std::string tmpl = (base / "start.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw sys_error("cannot create a folder in " + base.string(), errno);
    path_ = tmpl;
    parent_.reset(open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() { remove(); }
  const fs::path& path() const { return path_; }
  // After pivot_root the tmpfs is no longer mounted here; on an error before
  // that, it still is, and is detached first.
  void remove() {
    if (path_.empty() || !parent_) return;
    const std::string name = path_.filename().string();
    if (unlinkat(parent_.get(), name.c_str(), AT_REMOVEDIR) != 0 && errno == EBUSY) {
      umount2(path_.c_str(), MNT_DETACH);  // by path: parent_ is from the host's namespace
      unlinkat(parent_.get(), name.c_str(), AT_REMOVEDIR);
    }
    if (faccessat(parent_.get(), name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0) path_.clear();
  }

 private:
  // The base may sit in /tmp: it must be ours and closed to others.
  static void ensure_private_base(const fs::path& base) {
    if (mkdir(base.c_str(), 0700) != 0 && errno != EEXIST) {
      throw sys_error("cannot create the runtime folder " + base.string(), errno,
                      "set DEEPOPS_RUNTIME_PATH to a folder you own");
    }
    struct stat st {};
    if (lstat(base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0) {
      throw Error(Errc::permission_denied,
                  "the runtime folder " + base.string() + " is not a private folder of yours",
                  "remove it, or set DEEPOPS_RUNTIME_PATH to a folder you own (mode 0700)");
    }
  }
  fs::path path_;
  UniqueFd parent_;
};

void write_proc_file(const char* path, const std::string& text) {
  UniqueFd fd(open(path, O_WRONLY | O_CLOEXEC));
  if (!fd || write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw sys_error(std::string("cannot write ") + path, errno,
                    "`deepops-ctr check` tests user namespaces");
  }
}

// Maps `inside` to whoever the caller is in its current namespace.
void map_self(uid_t inside_uid, gid_t inside_gid, uid_t outside_uid, gid_t outside_gid) {
  write_proc_file("/proc/self/setgroups", "deny");  // required before an unprivileged gid_map
  write_proc_file("/proc/self/uid_map",
                  std::to_string(inside_uid) + " " + std::to_string(outside_uid) + " 1");
  write_proc_file("/proc/self/gid_map",
                  std::to_string(inside_gid) + " " + std::to_string(outside_gid) + " 1");
}

// One user namespace, mapping one id: the user's own (as Enroot and Pyxis
// map it), or root with remap-root. The keeper created it, so it holds every
// capability in it whichever id it has, and can mount; the command execs as
// that id and keeps none unless it is root there.
void enter_namespaces(const ContainerSpec& spec, const HostUser& user, bool as_root) {
  int flags = CLONE_NEWUSER | CLONE_NEWNS;
  if (spec.unshare_net) flags |= CLONE_NEWNET;
  if (spec.unshare_ipc) flags |= CLONE_NEWIPC;
  if (spec.unshare_uts) flags |= CLONE_NEWUTS;
  if (unshare(flags) != 0) {
    int err = errno;
    throw sys_error("cannot create a user namespace", err,
                    "run `deepops-ctr check`: user namespaces may be disabled or restricted");
  }
  map_self(as_root ? 0 : user.uid, as_root ? 0 : user.gid, user.uid, user.gid);
  // Host mount events still reach us; ours never reach the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    throw sys_error("cannot make the mount namespace private", errno);
  }
}

void bring_up_loopback() {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (!sock || ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) {
    throw sys_error("cannot bring up the loopback interface of the new network namespace", errno);
  }
}

// An IPC namespace of its own (--unshare ipc) also gets its own POSIX shared
// memory and message queues, as under Enroot: the host's /dev/shm would
// still join the two.
// The host's /dev is bound, not copied: nothing is created in it, and a
// folder the host lacks is left out.
void mount_ipc_dev(RootfsMounter& m, const ContainerSpec& spec, bool host_dev) {
  if (!spec.unshare_ipc) return;
  for (auto [type, target, data] :
       {std::tuple{"tmpfs", "/dev/shm", "mode=1777"}, std::tuple{"mqueue", "/dev/mqueue", ""}}) {
    if (host_dev && !m.exists(target)) continue;
    m.mount_fs(type, type, target, MS_NOSUID | MS_NODEV | MS_NOEXEC, data, host_dev ? kNone : kDir);
  }
}

void mount_dev(RootfsMounter& m, const ContainerSpec& spec) {
  if (!spec.restrict_dev) {
    m.bind("/dev", "/dev", true, false, kDir);
    mount_ipc_dev(m, spec, true);
    return;
  }
  m.mount_fs("tmpfs", "tmpfs", "/dev", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k", kDir);
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string path = std::string("/dev/") + node;
    m.bind(path, path, false, false, kFile);
  }
  m.mount_fs("devpts", "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620", kDir);
  if (spec.unshare_ipc) {
    mount_ipc_dev(m, spec, false);
  } else {
    m.bind("/dev/shm", "/dev/shm", false, false, kDir);
  }
  UniqueFd dev = m.resolve("/dev", kNone, true);
  for (auto [name, target] : {std::pair{"ptmx", "pts/ptmx"},
                              {"fd", "/proc/self/fd"},
                              {"stdin", "/proc/self/fd/0"},
                              {"stdout", "/proc/self/fd/1"},
                              {"stderr", "/proc/self/fd/2"}}) {
    if (symlinkat(target, dev.get(), name) != 0) {
      throw sys_error(std::string("cannot create /dev/") + name + " in the container", errno);
    }
  }
}

// Host files the container shares: a missing one on the host is skipped.
void bind_host_file(RootfsMounter& m, const char* host, const char* target) {
  if (access(host, F_OK) != 0) return;
  m.bind(host, target, false, false, kFile);
}

// /etc/localtime is a symlink into zoneinfo in most images, and the image
// may lack tzdata: replace the link with a file so the bind has a target.
void bind_localtime(RootfsMounter& m) {
  if (access("/etc/localtime", R_OK) != 0) return;
  if (!m.exists("/etc/localtime")) {
    UniqueFd etc = m.resolve("/etc", kDir, true);
    unlinkat(etc.get(), "localtime", 0);
  }
  m.bind("/etc/localtime", "/etc/localtime", false, true, kFile);
}

// Where the user's home is inside, and what HOME says: as Enroot, root's
// home when remapped to root, else the same path as on the host.
std::string home_in_container(const ContainerSpec& spec, const HostUser& user) {
  return spec.remap_root ? "/root" : user.home;
}

void mount_system(RootfsMounter& m, const ContainerSpec& spec, const fs::path& scratch,
                  const HostUser& user, uid_t uid, gid_t gid) {
  m.bind("/proc", "/proc", true, false, kDir);
  m.bind("/sys", "/sys", true, true, kDir);
  mount_dev(m, spec);
  m.mount_fs("tmpfs", "tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777", kDir);
  bind_host_file(m, "/etc/hosts", "/etc/hosts");
  bind_host_file(m, "/etc/resolv.conf", "/etc/resolv.conf");
  bind_host_file(m, "/etc/machine-id", "/etc/machine-id");
  bind_localtime(m);

  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  write_text(scratch / "hostname", std::string(host) + "\n");
  m.bind((scratch / "hostname").string(), "/etc/hostname", false, true, kFile);

  std::string shell = user.shell;
  if (shell.empty() || !m.exists(shell)) shell = "/bin/sh";
  write_text(scratch / "passwd",
             merge_passwd(m.read_file("/etc/passwd").value_or(""), user, uid, gid, shell));
  write_text(scratch / "group", merge_group(m.read_file("/etc/group").value_or(""), user, gid));
  m.bind((scratch / "passwd").string(), "/etc/passwd", false, true, kFile);
  m.bind((scratch / "group").string(), "/etc/group", false, true, kFile);
  // With `_apt` gone (merge_passwd), APT as root would warn on every run
  // that it cannot drop privileges; Enroot's setting silences it.
  if (uid == 0 && m.exists("/etc/debian_version") && m.exists("/etc/apt/apt.conf.d")) {
    m.write_file("/etc/apt/apt.conf.d/deepops-sandbox", "APT::Sandbox::User \"root\";\n");
  }
  if (spec.mount_home && !user.home.empty() && user.home != "/") {
    m.bind(user.home, home_in_container(spec, user), true, false, kDir, MS_NOSUID);
  }
}

HookPlan native_hooks(const HostView& host, const std::map<std::string, std::string>& env) {
  HookPlan plan = plan_gpu(host, env);
  plan.merge(plan_infiniband(host, env));
  plan.merge(plan_pmix(host, env));
  return plan;
}

void apply_plan(RootfsMounter& m, const HookPlan& plan) {
  // A /sys view is only drawn where the host's sysfs has the folder: the
  // container's /sys is the host's, read-only.
  std::vector<std::string> views;
  for (const auto& dir : plan.tmpfs) {
    if (!m.exists(dir)) continue;
    m.mount_fs("tmpfs", "tmpfs", dir, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755", kNone);
    views.push_back(dir + "/");
  }
  std::vector<std::string> lib_dirs;
  for (const auto& b : plan.binds) {
    m.bind(b.source, b.target, false, b.read_only, MountEntry::Create::automatic, MS_NOSUID);
    if (b.target.find(".so") != std::string::npos) {
      std::string dir = b.target.substr(0, b.target.rfind('/'));
      if (std::find(lib_dirs.begin(), lib_dirs.end(), dir) == lib_dirs.end())
        lib_dirs.push_back(dir);
    }
  }
  for (const auto& l : plan.symlinks) {
    bool in_view = std::any_of(views.begin(), views.end(),
                               [&](const std::string& v) { return l.path.starts_with(v); });
    if (in_view) m.symlink(l.path, l.target);
  }
  if (plan.run_ldconfig && !lib_dirs.empty()) {
    std::string conf = "# driver libraries mounted by deepops-ctr\n";
    for (const auto& d : lib_dirs) conf += d + "\n";
    m.write_file("/etc/ld.so.conf.d/000-deepops-driver.conf", conf);
  }
}

// Refreshes the image's ld.so cache for the driver libraries just mounted;
// images without ldconfig (musl, busybox) are left alone.
void run_ldconfig() {
  const char* ldconfig = access("/sbin/ldconfig", X_OK) == 0       ? "/sbin/ldconfig"
                         : access("/usr/sbin/ldconfig", X_OK) == 0 ? "/usr/sbin/ldconfig"
                                                                   : nullptr;
  if (!ldconfig) return;
  pid_t pid = fork();
  if (pid == 0) {
    syscall(SYS_close_range, 3U, ~0U, 0U);
    char* argv[] = {const_cast<char*>(ldconfig), nullptr};
    execv(ldconfig, argv);
    _exit(127);
  }
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr,
                 "deepops-ctr: warning: ldconfig failed in the container; driver "
                 "libraries may not be found (set LD_LIBRARY_PATH)\n");
  }
}

// The image with its writable layer, mounted on <scratch>/root in the
// keeper's namespaces: a private tmpfs, the squashfs over FUSE on lower/, and
// the overlay (upper and work on the tmpfs, or in a named container's folder).
class LayeredRoot {
 public:
  // `shared`: the image's mount from its server (shared_image.hpp), attached
  // here; without one, or where it cannot be attached, a mount of our own.
  LayeredRoot(const ContainerSpec& spec, const fs::path& scratch, SharedImage* shared = nullptr)
      : scratch_(mount_scratch(scratch)),
        image_(mount_image(spec, scratch / "lower", shared)),
        overlay_(lowers(spec, scratch), layer_dir(spec, scratch, "upper"),
                 layer_dir(spec, scratch, "work"), scratch / "root", spec.overlay) {}
  fs::path root() const { return scratch_ / "root"; }
  // The servers this process started: none when the image's server serves.
  const std::vector<pid_t>& server_pids() const {
    static const std::vector<pid_t> none;
    return image_ ? image_->server_pids() : none;
  }

 private:
  static std::unique_ptr<SquashfsMount> mount_image(const ContainerSpec& spec,
                                                    const fs::path& lower, SharedImage* shared) {
    if (shared != nullptr && shared->attach(lower)) return nullptr;
    return std::make_unique<SquashfsMount>(spec.squashfs, lower);
  }
  static fs::path mount_scratch(const fs::path& s) {
    if (mount("tmpfs", s.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0) {
      throw sys_error("cannot mount a tmpfs on " + s.string(), errno);
    }
    for (const char* d : {"lower", "work"}) mkdir((s / d).c_str(), 0700);
    // The overlay's root takes its mode from upper/: 0755, as an image's "/".
    for (const char* d : {"upper", "root"}) mkdir((s / d).c_str(), 0755);
    return s;
  }
  static std::vector<fs::path> lowers(const ContainerSpec& spec, const fs::path& s) {
    std::vector<fs::path> out;
    if (spec.shared_layer) out.push_back(*spec.shared_layer);
    out.push_back(s / "lower");
    return out;
  }
  static fs::path layer_dir(const ContainerSpec& spec, const fs::path& s, const char* name) {
    return (spec.persistent_dir ? *spec.persistent_dir : s) / name;
  }
  fs::path scratch_;
  std::unique_ptr<SquashfsMount> image_;
  OverlayMount overlay_;
};

void pivot_into(int root_fd) {
  if (fchdir(root_fd) != 0) throw sys_error("cannot enter the container root", errno);
  if (syscall(SYS_pivot_root, ".", ".") != 0) throw sys_error("pivot_root", errno);
  if (umount2(".", MNT_DETACH) != 0) throw sys_error("cannot detach the host root", errno);
  if (chdir("/") != 0) throw sys_error("chdir /", errno);
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// What the command child reports when it cannot exec.
struct ChildFailure {
  int err = 0;
  char stage[64] = {};
};

[[noreturn]] void child_fail(int pipe_fd, const char* stage, int err) {
  ChildFailure f;
  f.err = err;
  std::strncpy(f.stage, stage, sizeof(f.stage) - 1);
  [[maybe_unused]] ssize_t n = write(pipe_fd, &f, sizeof(f));
  _exit(127);
}

struct Launch {
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  std::string workdir;
  bool workdir_required = false;
  bool id_call_filter = true;  // install_id_call_filter() before the exec
};

[[noreturn]] void exec_command(Launch& l, int pipe_fd, pid_t keeper,
                               const sigset_t& original_mask) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != keeper) _exit(137);
  if (chdir(l.workdir.c_str()) != 0) {
    if (l.workdir_required) child_fail(pipe_fd, "workdir", errno);
    if (chdir("/") != 0) child_fail(pipe_fd, "chdir /", errno);
  }
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  sigprocmask(SIG_SETMASK, &original_mask, nullptr);
  auto argv = c_strings(l.argv);
  auto envp = c_strings(l.envp);
  if (l.id_call_filter) {
    try {
      install_id_call_filter();  // last: the steps above change ids for real
    } catch (const Error&) {
      child_fail(pipe_fd, "seccomp", errno);
    }
  }
  environ = envp.data();  // execvp searches the container's PATH
  execvp(argv[0], argv.data());
  child_fail(pipe_fd, "exec", errno);
}

bool is_server(pid_t pid, const std::vector<pid_t>& servers) {
  return std::find(servers.begin(), servers.end(), pid) != servers.end();
}

// One server gone leaves the request it was answering unanswered, and its
// reader waiting for as long as the others keep the mount alive: so the
// others are stopped too, the mount fails every request at once
// (ENOTCONN), and the command sees an error instead of a hang.
void server_died(pid_t pid, int status, const std::vector<pid_t>& servers) {
  std::fprintf(stderr,
               "deepops-ctr: a squashfs server of the container (pid %d) died (status %d); "
               "the image is no longer readable\n",
               static_cast<int>(pid), status);
  for (pid_t other : servers) {
    if (other != pid) kill(other, SIGKILL);
  }
}

int wait_forwarding_signals(pid_t child, const std::vector<pid_t>& servers, const sigset_t& waited);
CommandError failure_error(const ChildFailure& f, const Launch& l, const std::string& where);

// Forks the command, passes signals on, and returns its exit status.
int spawn_and_wait(Launch& launch, const std::string& where, const std::vector<pid_t>& servers) {
  sigset_t waited, original;
  sigemptyset(&waited);
  for (int sig :
       {SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM}) {
    sigaddset(&waited, sig);
  }
  sigprocmask(SIG_BLOCK, &waited, &original);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw sys_error("pipe", errno);
  UniqueFd report(fds[0]), report_w(fds[1]);
  pid_t keeper = getpid();
  pid_t child = fork();
  if (child < 0) throw sys_error("cannot fork the command", errno);
  if (child == 0) exec_command(launch, report_w.get(), keeper, original);
  report_w.reset();
  ChildFailure failure;
  ssize_t n;
  while ((n = read(report.get(), &failure, sizeof(failure))) < 0 && errno == EINTR) {
  }
  int status = wait_forwarding_signals(child, servers, waited);
  sigprocmask(SIG_SETMASK, &original, nullptr);
  if (n == sizeof(failure)) throw failure_error(failure, launch, where);
  return status;
}

int wait_forwarding_signals(pid_t child, const std::vector<pid_t>& servers,
                            const sigset_t& waited) {
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&waited, &info);
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == child) {
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      } else if (is_server(pid, servers)) {
        server_died(pid, status, servers);
      }
    }
  }
}

CommandError failure_error(const ChildFailure& f, const Launch& l, const std::string& where) {
  std::string stage = f.stage;
  if (stage == "exec") {
    Error e = sys_error("cannot run '" + l.argv[0] + "' in " + where, f.err,
                        f.err == ENOENT ? "is it installed in the image, and on its PATH?" : "");
    return CommandError(e, f.err == ENOENT ? 127 : 126);
  }
  if (stage == "workdir") {
    return CommandError(sys_error("working directory " + l.workdir + " in the container", f.err,
                                  "create it, mount it, or pick another with --workdir"),
                        126);
  }
  if (stage == "seccomp") {
    return CommandError(sys_error("cannot install the seccomp filter in " + where, f.err,
                                  "run with --no-seccomp (apt-get and dpkg then fail on "
                                  "setgroups and chown), or set SECCOMP_FILTER no"),
                        126);
  }
  return CommandError(sys_error("cannot start the command (" + stage + ")", f.err), 126);
}

// A holding keeper has no command: it waits to be told to stop, and reaps
// whatever its children were.
int hold_until_stopped(const std::vector<pid_t>& servers) {
  sigset_t waited;
  sigemptyset(&waited);
  for (int sig : {SIGCHLD, SIGHUP, SIGINT, SIGTERM}) sigaddset(&waited, sig);
  sigprocmask(SIG_BLOCK, &waited, nullptr);
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&waited, &info);
    if (sig == SIGHUP || sig == SIGINT || sig == SIGTERM) return 0;
    if (sig != SIGCHLD) continue;
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (is_server(pid, servers)) {
        server_died(pid, status, servers);
        return 1;
      }
    }
  }
}

// The last 64 KiB of what was written to `out`.
std::string tail_of(int out) {
  constexpr off_t kKeep = 64 * 1024;
  off_t size = lseek(out, 0, SEEK_END);
  off_t from = size > kKeep ? size - kKeep : 0;
  std::string text(static_cast<size_t>(std::max<off_t>(size - from, 0)), '\0');
  ssize_t got = pread(out, text.data(), text.size(), from);
  text.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return text;
}

std::string last_line(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

// A process's environment as the kernel has it (NUL-separated), at most
// 4 MiB: it is the user's process, and the keeper reads no more than that.
std::map<std::string, std::string> read_environ(pid_t pid) {
  UniqueFd fd(open(("/proc/" + std::to_string(pid) + "/environ").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("cannot read the environment of the image's entrypoint", errno);
  constexpr size_t kMax = 4 << 20;
  std::string text;
  char chunk[65536];
  ssize_t n;
  while (text.size() < kMax && (n = read(fd.get(), chunk, sizeof(chunk))) > 0)
    text.append(chunk, n);
  std::map<std::string, std::string> env;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\0', at);
    if (end == std::string::npos) end = text.size();
    std::string kv = text.substr(at, end - at);
    size_t eq = kv.find('=');
    if (eq != std::string::npos && eq > 0) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    at = end + 1;
  }
  return env;
}

// The container's init (ContainerSpec::init_entrypoint): started, waited for
// until its shell stops itself, then held stopped until the container ends.
class EntrypointInit {
 public:
  EntrypointInit(const Launch& base, const ContainerSpec& spec) {
    Launch l = base;
    l.argv = spec.init_entrypoint;
    for (const char* word : {"/bin/sh", "-c", "kill -STOP $$; exit 0"}) l.argv.push_back(word);
    l.workdir_required = false;
    UniqueFd out(memfd_create("deepops-entrypoint", MFD_CLOEXEC));
    if (!out) throw sys_error("cannot capture the image's entrypoint", errno);
    pid_t keeper = getpid();
    sigset_t current;
    sigprocmask(SIG_SETMASK, nullptr, &current);
    pid_ = fork();
    if (pid_ < 0) throw sys_error("cannot start the image's entrypoint", errno);
    if (pid_ == 0) {
      dup2(out.get(), STDOUT_FILENO);
      dup2(out.get(), STDERR_FILENO);
      // It stays for the container's life, with whatever it starts: it must
      // not hold the keeper's descriptors (the report pipe, whose end tells
      // slurmstepd the report is complete).
      syscall(SYS_close_range, 3U, ~0U, 0U);
      exec_command(l, -1, keeper, current);
    }
    int status = 0;
    while (waitpid(pid_, &status, WUNTRACED) < 0 && errno == EINTR) {
    }
    output_ = tail_of(out.get());
    if (!WIFSTOPPED(status)) {
      pid_ = -1;
      std::string cmd;
      for (const auto& a : spec.init_entrypoint) cmd += (cmd.empty() ? "" : " ") + a;
      std::string how = WIFEXITED(status)
                            ? "exited with status " + std::to_string(WEXITSTATUS(status))
                            : "was killed by signal " + std::to_string(WTERMSIG(status));
      std::string last = last_line(output_);
      throw Error(Errc::internal,
                  "the image's entrypoint (" + cmd + ") " + how +
                      " instead of running the command" + (last.empty() ? "" : ": " + last),
                  "if the image has an unusual entrypoint, try --no-container-entrypoint");
    }
    env_ = read_environ(pid_);
  }
  EntrypointInit(const EntrypointInit&) = delete;
  EntrypointInit& operator=(const EntrypointInit&) = delete;
  ~EntrypointInit() {
    // Reaped already (hold_until_stopped reaps every child that ends), its
    // pid may be someone else's now: only a child still there is killed.
    if (pid_ <= 0 || waitpid(pid_, nullptr, WNOHANG) != 0) return;
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  const std::map<std::string, std::string>& environment() const { return env_; }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  std::map<std::string, std::string> env_;
  std::string output_;
};

}  // namespace

std::map<std::string, std::string> host_environment() { return environment_map(environ); }

std::vector<std::string> container_argv(const ContainerSpec& spec) {
  std::vector<std::string> argv =
      spec.entrypoint ? (spec.entrypoint->empty() ? std::vector<std::string>{}
                                                  : std::vector<std::string>{*spec.entrypoint})
                      : spec.image.entrypoint;
  const auto& rest = !spec.command.empty() ? spec.command
                     : spec.entrypoint     ? std::vector<std::string>{}
                                           : spec.image.cmd;
  argv.insert(argv.end(), rest.begin(), rest.end());
  if (argv.empty()) {
    throw Error(Errc::invalid_argument, spec.image_name + " has no ENTRYPOINT or CMD",
                "give the command to run, e.g. deepops-ctr start IMAGE bash");
  }
  return argv;
}

std::map<std::string, std::string> container_environment(
    const ContainerSpec& spec, const std::map<std::string, std::string>& host) {
  auto env = host;
  for (const auto& kv : spec.image.env) {
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  bool image_has_path = false;
  for (const auto& kv : spec.image.env) image_has_path |= kv.starts_with("PATH=");
  // The host's PATH means nothing inside; an image without one gets the usual.
  if (!image_has_path) env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& [k, v] : spec.environ) env[k] = v;
  for (const auto& [k, v] : spec.env) env[k] = v;
  return env;
}

int run_container(const ContainerSpec& spec) {
  const auto host_env = host_environment();
  const auto home = host_env.find("HOME");
  const HostUser user = HostUser::current(home == host_env.end() ? "/" : home->second);
  auto env = container_environment(spec, host_env);
  // Hooks that cannot work fail here, before anything is mounted.
  auto hook_env = env;
  for (const auto& [k, v] : spec.hook_env) hook_env.try_emplace(k, v);
  const HookPlan plan = native_hooks(spec.host, hook_env);
  for (const auto& [k, v] : plan.env) env[k] = v;
  Launch launch;
  if (!spec.hold) launch.argv = container_argv(spec);
  launch.workdir = !spec.workdir.empty()             ? spec.workdir
                   : !spec.image.working_dir.empty() ? spec.image.working_dir
                                                     : "/";
  launch.workdir_required = !spec.workdir.empty();
  launch.id_call_filter = spec.id_call_filter;
  const uid_t uid = spec.remap_root ? 0 : user.uid;
  const gid_t gid = spec.remap_root ? 0 : user.gid;
  if (spec.remap_root || spec.mount_home) env["HOME"] = home_in_container(spec, user);

  ScratchDir scratch(spec.runtime_dir);
  // Reached before the namespaces: the server is the user's, not this
  // container's, and outlives it.
  std::optional<SharedImage> shared;
  if (spec.image_mount_linger.count() > 0) {
    shared = SharedImage::connect(spec.squashfs, spec.runtime_dir, spec.image_mount_linger);
  }
  enter_namespaces(spec, user, spec.remap_root);
  if (spec.unshare_net) bring_up_loopback();
  const fs::path s = scratch.path();
  LayeredRoot layers(spec, s, shared ? &*shared : nullptr);

  RootfsMounter rootfs(layers.root());
  mount_system(rootfs, spec, s, user, uid, gid);
  for (const auto& m : spec.mounts) rootfs.apply(m);
  apply_plan(rootfs, plan);
  AdminHookOutput admin = run_admin_hooks(spec.hooks, layers.root(), s, host_env);
  for (const auto& m : admin.mounts) rootfs.apply(m);
  for (const auto& [k, v] : admin.environ) env[k] = v;
  for (const auto& [k, v] : spec.env) env[k] = v;  // the user's word is last
  for (const auto& [k, v] : env) launch.envp.push_back(k + "=" + v);

  UniqueFd root = rootfs.resolve("/", kNone, true);
  pivot_into(root.get());
  if (plan.run_ldconfig) run_ldconfig();
  if (!spec.writable &&
      mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, nullptr) != 0) {
    throw sys_error("cannot make the container read-only", errno);
  }
  scratch.remove();

  std::optional<EntrypointInit> init;
  if (spec.hold && !spec.init_entrypoint.empty()) init.emplace(launch, spec);
  if (spec.on_ready) {
    spec.on_ready(ReadyContainer{init ? init->environment() : env, launch.workdir,
                                 launch.workdir_required, spec.remap_root,
                                 init ? init->output() : std::string()});
  }
  if (spec.hold) return hold_until_stopped(layers.server_pids());
  return spawn_and_wait(launch, spec.image_name, layers.server_pids());
}

int exec_in_container(const ExecSpec& spec) {
  const std::string what = "container '" + spec.container_name + "'";
  join_keeper(spec.keeper, what);
  Launch launch;
  launch.argv = spec.argv;
  for (const auto& [k, v] : spec.env) launch.envp.push_back(k + "=" + v);
  launch.workdir = spec.workdir;
  launch.workdir_required = spec.workdir_required;
  launch.id_call_filter = spec.id_call_filter;
  return spawn_and_wait(launch, what, {});
}

void export_container(const ContainerSpec& spec, const fs::path& out) {
  const fs::path target = fs::absolute(out);
  fs::path partial = target;
  partial += ".partial";
  ScratchDir scratch(spec.runtime_dir);
  // As root inside: the snapshot reads every file, whoever owns it.
  enter_namespaces(spec, HostUser::current(), true);
  LayeredRoot layers(spec, scratch.path());
  try {
    snapshot_to_squashfs(layers.root(), partial, SquashfsOptions{});
    fs::rename(partial, target);
  } catch (...) {
    std::error_code ec;
    fs::remove(partial, ec);
    throw;
  }
  CachedImage meta;
  meta.config = spec.image;
  meta.references = {spec.image_name};
  ImageCache::write_beside(target, meta);
}

}  // namespace deepops
