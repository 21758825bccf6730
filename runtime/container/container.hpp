#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/mount_spec.hpp"
#include "config/overlay_kind.hpp"
#include "container/hooks.hpp"
#include "container/keeper_join.hpp"
#include "registry/manifest.hpp"
#include "util/error.hpp"

namespace deepops {

// How the command of a ready container runs, for front ends that start it
// themselves: its whole environment, and where it starts.
struct ReadyContainer {
  std::map<std::string, std::string> env;
  std::string workdir;
  bool workdir_required = false;
  bool remap_root = false;
  std::string init_output;  // of ContainerSpec::init_entrypoint, the last 64 KiB
};

// Everything needed to run one container: the image, how to run its command,
// and what to mount. Front ends fill it; run_container() does the work.
struct ContainerSpec {
  std::filesystem::path squashfs;
  ImageConfig image;       // ENV, WORKDIR, ENTRYPOINT and CMD
  std::string image_name;  // for messages

  std::vector<std::string> command;       // empty: the image's CMD
  std::optional<std::string> entrypoint;  // set: replaces the image's ("" removes it)
  std::vector<std::pair<std::string, std::string>> env;  // on top of everything else
  std::string workdir;                                   // empty: the image's, else "/"

  bool writable = false;    // keep "/" writable (changes live in RAM, gone at exit)
  bool remap_root = false;  // run as uid 0 inside (still the caller outside)
  // Fake success for the set*id and chown calls, as Enroot and Pyxis do, so
  // that apt, dpkg and pip work (see container/id_call_filter.cpp).
  bool id_call_filter = true;
  bool mount_home = false;
  bool restrict_dev = false;  // a minimal /dev instead of the host's
  OverlayKind overlay = OverlayKind::automatic;
  bool unshare_net = false, unshare_ipc = false, unshare_uts = false;
  std::vector<MountEntry> mounts;  // after the system mounts, in this order
  std::vector<std::pair<std::string, std::string>> environ;  // from environ files

  // Native hooks (GPU, InfiniBand, PMIx) look at the host through this, and
  // see these variables besides the command's (what a front end knows of
  // the host that the environment does not say yet).
  HostView host;
  std::map<std::string, std::string> hook_env;
  // Admin hooks (hooks.d executables), run in order after the native ones.
  std::vector<std::filesystem::path> hooks;

  // More than 0: the image's mount is shared with the user's other
  // containers of the same image and cgroup, through a server that outlives
  // the last of them by this long (shared_image.hpp). 0: a mount of its own.
  std::chrono::seconds image_mount_linger{0};

  // Where the per-start scratch folder is made (it holds only mount points and
  // is removed before the command runs).
  std::filesystem::path runtime_dir;
  // Named containers: the overlay's upper layer lives here across starts.
  std::optional<std::filesystem::path> persistent_dir;
  // A running named container's writes (its upper/), read-only under this
  // container's own layer: a second instance from the same files, whose
  // own writes are not kept (--container-name=NAME:no_exec beside a running
  // one).
  std::optional<std::filesystem::path> shared_layer;
  // Called in the keeper once the container is ready, just before the
  // command starts (the keeper's root is the container's by then).
  std::function<void(const ReadyContainer&)> on_ready;
  // No command: once ready, the keeper holds the container until SIGTERM,
  // SIGINT or SIGHUP, for front ends that put their own processes in it
  // (the SPANK plugin's tasks, through enter_container).
  bool hold = false;
  // With `hold`: the container's init, as in Pyxis. Once the container is
  // ready, this ENTRYPOINT runs around a shell that stops itself (`sh -c
  // 'kill -STOP $$'`); whatever the entrypoint exported is then in that
  // shell's environment, which becomes ReadyContainer::env, what the tasks
  // take. The stopped shell stays until the container ends, so what the
  // entrypoint started keeps running. An entrypoint that exits instead
  // throws an Error quoting the end of its output.
  std::vector<std::string> init_entrypoint;
};

// The command could not be started inside a container that was set up:
// shells' 127 (not found) or 126 (not runnable).
class CommandError : public Error {
 public:
  CommandError(const Error& e, int exit_status) : Error(e), exit_status_(exit_status) {}
  int exit_status() const { return exit_status_; }

 private:
  int exit_status_;
};

// Runs the container's command as the calling user and returns its exit
// status (128+N when killed by signal N). Must be called from a
// single-threaded process: it creates user and mount namespaces.
int run_container(const ContainerSpec& spec);

// Runs another command in a running container, by joining its keeper's
// namespaces: `deepops-ctr exec`.
struct ExecSpec {
  pid_t keeper = 0;
  bool id_call_filter = true;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string workdir = "/";
  bool workdir_required = false;
  std::string container_name;  // for messages
};
int exec_in_container(const ExecSpec& spec);

// Writes the container's root (image plus writable layer) to a new squashfs
// at `out`, with the image's metadata beside it (see ImageCache::write_beside).
void export_container(const ContainerSpec& spec, const std::filesystem::path& out);

// This process's environment as a map (environment_map in keeper_join.hpp).
std::map<std::string, std::string> host_environment();

// The argv that runs: ENTRYPOINT + (command or CMD), Docker's rules.
std::vector<std::string> container_argv(const ContainerSpec& spec);

// The environment the command sees: the caller's, then the image's ENV, the
// environ files and spec.env, in increasing precedence.
std::map<std::string, std::string> container_environment(
    const ContainerSpec& spec, const std::map<std::string, std::string>& host);

}  // namespace deepops
