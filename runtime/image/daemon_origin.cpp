// dockerd:// and podman:// sources: the client's `save` streamed into the
// docker-archive unpack. The client runs as whoever runs this (never as root
// on someone's behalf): a daemon decides for itself whom it serves, and
// rootless Podman's storage is the user's own.
#include "image/daemon_origin.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <initializer_list>
#include <optional>
#include <utility>
#include <vector>

#include "image/archive_origin.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"
#include "util/unique_fd.hpp"

extern char** environ;

namespace deepops {
namespace fs = std::filesystem;
namespace {

constexpr size_t kStderrKept = 64 * 1024;
// After a failed unpack: how long the client may take to exit by itself
// (its pipe is closed, so a writer gets EPIPE at once), before it is killed.
constexpr std::chrono::seconds kExitGrace{5};

// PATH as execvp reads it, except that an empty entry (the current folder)
// is skipped: a client in whatever folder the user stands in is not taken.
std::optional<fs::path> find_in_path(const std::string& name, const std::string& search_path) {
  for (const auto& dir : split_nonempty(search_path, ':')) {
    if (dir.front() != '/') continue;
    fs::path candidate = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

std::vector<std::string> save_command(DaemonClient client, const std::string& image) {
  if (client == DaemonClient::docker) return {"docker", "save", image};
  // docker-archive rather than Podman's default oci-archive: one format to
  // read for both clients.
  return {"podman", "save", "--format", "docker-archive", image};
}

std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw sys_error("cannot make a pipe", errno);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions{};
  posix_spawnattr_t attr{};
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// The client's process: stdout and stderr each on a pipe, stdin /dev/null.
// Owns both read ends and the child: the destructor kills and reaps a child
// still running, so no error path leaves a zombie or an fd behind.
class SaveProcess {
 public:
  SaveProcess(const fs::path& exe, const std::vector<std::string>& args) : command_(args[0]) {
    auto [out_read, out_write] = make_pipe();
    auto [err_read, err_write] = make_pipe();
    SpawnSetup s;
    posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&s.actions, out_write.get(), 1);
    posix_spawn_file_actions_adddup2(&s.actions, err_write.get(), 2);
    // The client gets SIGPIPE back (closing our end must stop it) and no
    // blocked signals, whatever this process set for itself.
    sigset_t none, pipe;
    sigemptyset(&none);
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    posix_spawnattr_setsigmask(&s.attr, &none);
    posix_spawnattr_setsigdefault(&s.attr, &pipe);
    posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, exe.c_str(), &s.actions, &s.attr, argv.data(), environ);
    if (rc != 0) throw sys_error("cannot run " + exe.string(), rc);
    pid_ = pid;
    out_ = std::move(out_read);
    err_ = std::move(err_read);
  }
  ~SaveProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      (void)reap();
    }
  }
  SaveProcess(const SaveProcess&) = delete;
  SaveProcess& operator=(const SaveProcess&) = delete;

  // Reads the client's stdout, keeping its stderr meanwhile (a client
  // blocked on a full stderr pipe would never finish its stdout).
  size_t read(char* buffer, size_t size) {
    while (out_) {
      pollfd fds[2] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}};
      if (::poll(fds, err_ ? 2 : 1, -1) < 0) {
        if (errno == EINTR) continue;
        throw sys_error("cannot wait for the image from " + command_, errno);
      }
      if (err_ && fds[1].revents != 0) read_stderr();
      if (fds[0].revents == 0) continue;
      ssize_t n = ::read(out_.get(), buffer, size);
      if (n > 0) return static_cast<size_t>(n);
      if (n == 0) out_.reset();
      if (n < 0 && errno != EINTR) throw sys_error("cannot read from " + command_, errno);
    }
    return 0;
  }

  // After the whole archive: the rest of stdout (a tar may end before its
  // stream does) and stderr to their end, then the exit status.
  int finish() {
    std::vector<char> sink(64 * 1024);
    while (read(sink.data(), sink.size()) > 0) {
    }
    while (err_) read_stderr();
    return reap();
  }

  // After a failed unpack: stdout closed, stderr read while the client exits
  // by itself, for a bounded time, else it is killed. The exit status.
  int abandon() {
    out_.reset();
    auto deadline = std::chrono::steady_clock::now() + kExitGrace;
    while (err_ && wait_readable(err_.get(), deadline)) read_stderr();
    err_.reset();
    if (!wait_exit(deadline)) ::kill(pid_, SIGKILL);
    return reap();
  }

  const std::string& stderr_tail() const { return stderr_; }

 private:
  void read_stderr() {
    char chunk[4096];
    ssize_t n = ::read(err_.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
      err_.reset();
      return;
    }
    stderr_.append(chunk, static_cast<size_t>(n));
    if (stderr_.size() > kStderrKept) stderr_.erase(0, stderr_.size() - kStderrKept);
  }

  static int ms_until(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  }

  static bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
    pollfd p{fd, POLLIN, 0};
    int rc;
    while ((rc = ::poll(&p, 1, ms_until(deadline))) < 0 && errno == EINTR) {
    }
    return rc > 0;
  }

  // Whether the child has exited by the deadline: its pidfd becomes readable
  // then. Without pidfds (before Linux 5.3) it is not waited for.
  bool wait_exit(std::chrono::steady_clock::time_point deadline) const {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    return pidfd && wait_readable(pidfd.get(), deadline);
  }

  int reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

  pid_t pid_ = -1;
  std::string command_;
  UniqueFd out_;
  UniqueFd err_;
  std::string stderr_;
};

// The client's last non-empty stderr line: what it says went wrong. Of a
// long one, the end: clients put the reason last ("...: image not known").
std::string last_line(const std::string& text) {
  std::string found;
  for (const auto& line : split(text, '\n')) {
    std::string t = trim(line);
    if (!t.empty()) found = t;
  }
  if (found.size() > 500) found = "..." + found.substr(found.size() - 500);
  return found;
}

bool mentions(const std::string& text, std::initializer_list<const char*> needles) {
  const std::string lower = to_lower(text);
  return std::any_of(needles.begin(), needles.end(),
                     [&](const char* n) { return lower.find(n) != std::string::npos; });
}

std::string pull_hint(DaemonClient client, const std::string& image) {
  std::string cmd = client_command(client);
  return cmd + " pull " + image + " first, or check the name with `" + cmd + " images`";
}

// What a failed `save` means, from the client's own words.
Error client_error(DaemonClient client, const std::string& shown, const std::string& image,
                   int status, const std::string& tail) {
  const std::string cmd = client_command(client);
  std::string said = last_line(tail);
  if (WIFSIGNALED(status)) {
    return Error(Errc::internal, shown + ": `" + cmd + " save` was killed by signal " +
                                     std::to_string(WTERMSIG(status)) +
                                     (said.empty() ? "" : ": " + said));
  }
  const std::string exit = "`" + cmd + " save` exited with " + std::to_string(WEXITSTATUS(status));
  if (said.empty()) said = exit + " and said nothing";
  if (mentions(tail, {"cannot connect to the docker daemon", "is the docker daemon running",
                      "connection refused", "cannot connect to podman"})) {
    return Error(
        Errc::network, shown + ": " + cmd + " cannot reach its daemon: " + said,
        "start the daemon (or set " +
            std::string(client == DaemonClient::docker ? "DOCKER_HOST" : "CONTAINER_HOST") +
            " to where it runs), or save the image where it is (" + cmd + " save " + image +
            " -o img.tar) and import docker-archive:img.tar");
  }
  if (mentions(tail, {"permission denied"})) {
    return Error(Errc::permission_denied, shown + ": " + cmd + " was refused: " + said,
                 "the daemon's socket must be open to you (e.g. the docker group), or use "
                 "rootless Podman (podman://)");
  }
  if (mentions(tail, {"no such image", "image not known", "does not exist", "not found"})) {
    return Error(Errc::not_found,
                 shown + ": the image " + image + " is not in " + cmd + ": " + said,
                 pull_hint(client, image));
  }
  return Error(Errc::not_found, shown + ": " + exit + ": " + said,
               "run `" + cmd + " save " + image + " >/dev/null` to see why");
}

}  // namespace

const char* client_command(DaemonClient client) {
  return client == DaemonClient::docker ? "docker" : "podman";
}

std::unique_ptr<ImageOrigin> daemon_origin(DaemonClient client, const std::string& image,
                                           const std::string& search_path,
                                           const fs::path& scratch_parent) {
  const std::string cmd = client_command(client);
  const std::string shown = (client == DaemonClient::docker ? "dockerd://" : "podman://") + image;
  auto exe = find_in_path(cmd, search_path);
  if (!exe) {
    throw Error(Errc::not_found, cmd + " is not installed here (no `" + cmd + "` in PATH)",
                "install " + cmd + ", or save the image where it is (" + cmd + " save " + image +
                    " -o img.tar) and import docker-archive:img.tar");
  }
  SaveProcess saver(*exe, save_command(client, image));
  std::unique_ptr<ImageOrigin> origin;
  try {
    origin = docker_archive_stream_origin(
        shown, [&](char* buf, size_t size) { return saver.read(buf, size); }, scratch_parent);
  } catch (const Error&) {
    // An empty or cut stream is the client's failure, told in its words.
    int status = saver.abandon();
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      throw client_error(client, shown, image, status, saver.stderr_tail());
    }
    throw;
  }
  int status = saver.finish();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw client_error(client, shown, image, status, saver.stderr_tail());
  }
  return origin;
}

}  // namespace deepops
