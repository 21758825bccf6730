#include "container/shared_image.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "container/squashfs_mount.hpp"
#include "util/digest.hpp"

namespace deepops {
namespace fs = std::filesystem;

namespace {

constexpr int kReplyTimeoutMs = 10'000;   // a running server answers at once
constexpr int kStartTimeoutMs = 30'000;   // a new one mounts first
constexpr int kAttempts = 3;              // a server may be ending as we connect
constexpr size_t kMaxCgroupBytes = 4096;  // /proc/self/cgroup: one line on cgroup v2

std::string own_cgroup() {
  UniqueFd fd(open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC));
  std::string text(kMaxCgroupBytes, '\0');
  ssize_t n = fd ? read(fd.get(), text.data(), text.size()) : -1;
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

sockaddr_un address_of(const std::string& name, socklen_t& length) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // Abstract (a leading NUL): nothing on disk to go stale or clean up.
  const size_t n = std::min(name.size(), sizeof(address.sun_path) - 1);
  std::memcpy(address.sun_path + 1, name.data(), n);
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return address;
}

// The peer runs as this process's uid (as this namespace maps it: a peer of
// another user shows as the overflow uid).
bool peer_is_same_user(int sock) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  return getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 && peer.uid == getuid();
}

UniqueFd connect_to(const std::string& name) {
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return {};
  socklen_t length = 0;
  const sockaddr_un address = address_of(name, length);
  if (connect(sock.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) return {};
  if (!peer_is_same_user(sock.get())) return {};
  return sock;
}

bool send_fd(int sock, int fd) {
  char byte = 'm';
  iovec data{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  return sendmsg(sock, &message, MSG_NOSIGNAL) == 1;
}

UniqueFd receive_fd(int sock, int timeout_ms) {
  pollfd ready{sock, POLLIN, 0};
  if (poll(&ready, 1, timeout_ms) != 1) return {};
  char byte = 0;
  iovec data{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  if (recvmsg(sock, &message, MSG_CMSG_CLOEXEC) != 1) return {};
  const cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS ||
      header->cmsg_len != CMSG_LEN(sizeof(int)) || (message.msg_flags & MSG_CTRUNC)) {
    return {};
  }
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
  return UniqueFd(fd);
}

bool write_text(const char* path, const std::string& text) {
  UniqueFd fd(open(path, O_WRONLY | O_CLOEXEC));
  return fd && write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

// The server's own user and mount namespace, mapping the user to itself.
bool enter_own_namespaces() {
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
  return write_text("/proc/self/setgroups", "deny") &&
         write_text("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1") &&
         write_text("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1") &&
         mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

// Detached from the container that started it: no terminal, no inherited
// descriptor but `keep`, signals at their defaults except the terminal's.
void detach(int keep) {
  if (chdir("/") != 0) _exit(1);
  UniqueFd null(open("/dev/null", O_RDWR | O_CLOEXEC));
  for (int fd = 0; fd < 3; ++fd) {
    if (!null || dup2(null.get(), fd) < 0) _exit(1);
  }
  null.reset();
  if (keep > 3) syscall(SYS_close_range, 3U, static_cast<unsigned>(keep - 1), 0U);
  syscall(SYS_close_range, static_cast<unsigned>(std::max(keep, 2) + 1), ~0U, 0U);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU}) {
    signal(sig, SIG_IGN);
  }
  prctl(PR_SET_NAME, "deepops-image");
}

UniqueFd listen_on(const std::string& name) {
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  socklen_t length = 0;
  const sockaddr_un address = address_of(name, length);
  if (!sock || bind(sock.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
      listen(sock.get(), 64) != 0) {
    return {};  // EADDRINUSE: another start won the race, and serves
  }
  return sock;
}

// Serves copies of `mountpoint` to the user's containers until none has
// been connected for `linger`, or until one of its servers dies.
void serve_clients(int listener, int child_signals, const fs::path& mountpoint,
                   std::chrono::seconds linger) {
  std::vector<UniqueFd> clients;
  const int linger_ms = static_cast<int>(std::chrono::milliseconds(linger).count());
  for (;;) {
    std::vector<pollfd> watched = {{listener, POLLIN, 0}, {child_signals, POLLIN, 0}};
    for (const auto& c : clients) watched.push_back({c.get(), POLLIN, 0});
    const int ready = poll(watched.data(), watched.size(), clients.empty() ? linger_ms : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;                      // lingered with no container
    if (watched[1].revents != 0) return;         // a server died: the mount is gone
    for (size_t i = watched.size(); i-- > 2;) {  // containers that ended
      if (watched[i].revents == 0) continue;
      // Containers send nothing: whatever comes is read and dropped, so a
      // peer that writes cannot keep this loop busy.
      char bytes[64];
      if (recv(watched[i].fd, bytes, sizeof(bytes), MSG_DONTWAIT) <= 0) {
        clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i - 2));
      }
    }
    if ((watched[0].revents & POLLIN) == 0) continue;
    UniqueFd client(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    if (!client || !peer_is_same_user(client.get()) || clients.size() >= kMaxImageServerClients) {
      continue;
    }
    UniqueFd copy(static_cast<int>(
        open_tree(AT_FDCWD, mountpoint.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
    if (copy && send_fd(client.get(), copy.get())) clients.push_back(std::move(client));
  }
}

// The server process: never returns. `ready` gets one byte once it listens;
// it closes without one when this start lost the race or cannot mount.
[[noreturn]] void run_server(const fs::path& image, const fs::path& mountpoint,
                             const std::string& name, std::chrono::seconds linger, int ready) {
  detach(ready);
  sigset_t child;
  sigemptyset(&child);
  sigaddset(&child, SIGCHLD);
  sigprocmask(SIG_BLOCK, &child, nullptr);
  UniqueFd child_signals(signalfd(-1, &child, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!child_signals) _exit(1);
  // The name first: a start that lost the race mounts nothing. Containers
  // that connect meanwhile wait in the backlog until the mount is up.
  UniqueFd listener = listen_on(name);
  if (!listener) _exit(0);
  if (!enter_own_namespaces()) _exit(1);
  try {
    SquashfsMount mount(image, mountpoint);
    if (write(ready, "1", 1) != 1) _exit(1);
    close(ready);
    serve_clients(listener.get(), child_signals.get(), mountpoint, linger);
    listener.reset();  // no new container finds a server that is ending
  } catch (...) {
    _exit(1);
  }
  _exit(0);
}

// Starts a server for `image` and waits until it listens (or gave up).
void start_server(const fs::path& image, const fs::path& runtime_dir, const std::string& name,
                  std::chrono::seconds linger) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  UniqueFd ready(fds[0]), ready_w(fds[1]);
  pid_t child = fork();
  if (child < 0) return;
  if (child == 0) {
    // Its own session, and a grandchild: no terminal's signals, and no
    // parent that waits for it.
    setsid();
    pid_t server = fork();
    if (server != 0) _exit(server < 0 ? 1 : 0);
    run_server(image, runtime_dir, name, linger, ready_w.get());
  }
  ready_w.reset();
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  pollfd done{ready.get(), POLLIN, 0};
  if (poll(&done, 1, kStartTimeoutMs) == 1) {
    char byte;
    (void)!read(ready.get(), &byte, 1);
  }
}

}  // namespace

std::string image_server_name(const fs::path& image) {
  struct stat st {};
  if (stat(image.c_str(), &st) != 0) return {};
  const std::string identity = image.string() + "\n" + std::to_string(st.st_dev) + ":" +
                               std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                               std::to_string(st.st_ctim.tv_sec) + "." +
                               std::to_string(st.st_ctim.tv_nsec) + "\n" + own_cgroup();
  const std::string digest = sha256_digest(identity);  // "sha256:<hex>"
  return "deepops-image-" + std::to_string(getuid()) + "-" + digest.substr(7, 40);
}

std::optional<SharedImage> SharedImage::connect(const fs::path& relative_image,
                                                const fs::path& runtime_dir,
                                                std::chrono::seconds linger) {
  std::error_code ec;
  const fs::path image = fs::absolute(relative_image, ec);  // the server runs from "/"
  if (ec || !runtime_dir.is_absolute()) return std::nullopt;
  const std::string name = image_server_name(image);
  if (name.empty() || linger.count() <= 0) return std::nullopt;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    UniqueFd connection = connect_to(name);
    if (!connection) {
      start_server(image, runtime_dir, name, linger);
      connection = connect_to(name);
    }
    if (!connection) continue;
    UniqueFd mount = receive_fd(connection.get(), kReplyTimeoutMs);
    if (mount) return SharedImage(std::move(connection), std::move(mount));
  }
  return std::nullopt;
}

bool SharedImage::attach(const fs::path& target) {
  if (!mount_) return false;
  if (move_mount(mount_.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return false;
  }
  mount_.reset();
  return true;
}

}  // namespace deepops
