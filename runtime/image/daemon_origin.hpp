#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "image/image_origin.hpp"

namespace deepops {

// The local image stores Enroot imports from: dockerd:// (a Docker daemon)
// and podman:// (the user's Podman storage).
enum class DaemonClient { docker, podman };

// "docker" or "podman": the client's command, and its name in messages.
const char* client_command(DaemonClient client);

// IMAGE:TAG taken from the local daemon: `docker save IMAGE:TAG` or `podman
// save --format docker-archive IMAGE:TAG`, run as the calling user with this
// process's environment (no shell), its output streamed through a pipe into
// the docker-archive unpack (no copy of the archive on disk). The client is
// the first `docker`/`podman` in `search_path` (a PATH value). Its stderr is
// kept (the last 64 KiB) for the error: the client missing (not_found), its
// daemon unreachable (network) or refusing us (permission_denied), the image
// not there (not_found). A client exiting non-zero fails the import even if
// its archive was complete; the client never outlives the call.
std::unique_ptr<ImageOrigin> daemon_origin(DaemonClient client, const std::string& image,
                                           const std::string& search_path,
                                           const std::filesystem::path& scratch_parent);

}  // namespace deepops
