#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/settings.hpp"
#include "image/image_cache.hpp"
#include "image/importer.hpp"
#include "usecases/image_source.hpp"
#include "util/env_lookup.hpp"

// Finding and importing images, as every front end does it: `deepops-ctr
// import`, `start` and `create`, and the keeper of a Slurm step. The front
// end parses its own input and resolves the Settings; the rest is here.
namespace deepops {

// What an import asks for beyond the settings (the CLI's flags).
struct ImportRequest {
  explicit ImportRequest(ImageSource from) : source(std::move(from)) {}
  ImageSource source;
  std::filesystem::path cwd = "/";  // relative paths of file and offline sources
  std::optional<Platform> platform;
  SquashfsOptions squashfs;
  OwnerMapping owners = OwnerMapping::root;
  unsigned parallel_downloads = 4;
  std::vector<std::string> mirrors;  // REGISTRY=URL, tried before the mirrors file's
  CredentialFiles credentials;       // the user's (CredentialFiles::from_environment)
  // The user's variables; only PATH is read: where dockerd:// and podman://
  // find their client. Unset: this process's, the environment the client
  // runs with anyway (it needs HOME, DOCKER_HOST, XDG_RUNTIME_DIR).
  EnvLookup env;
  std::function<void(const ImportProgress&)> progress;
  std::function<void(const std::string&)> warn;
};

struct FoundImage {
  std::filesystem::path squashfs;
  ImageConfig config;
  std::string name;                    // for messages
  std::optional<ImportResult> import;  // set when it went through the cache's import
};

// The importer's options from the settings (cache, system caches, limits,
// ALLOW_HTTP, CA_FILE, MIRRORS_CONFIG) and the request.
ImportOptions import_options(const Settings& settings, const ImportRequest& request);

// The manifest digest of a registry image for the request's platform (this
// machine's by default), as the registry resolves it now, through the
// mirrors: what `enroot digest` prints, and what the cache is keyed by.
// Downloads no layer. Throws invalid_argument for anything but a registry image.
std::string resolve_manifest_digest(const ImportRequest& request, const Settings& settings);

// A squashfs file is read where it is (with its .json beside it, if any);
// registry, offline and daemon images are imported into the cache, or found
// there by their digest. A daemon image is saved from its daemon each time:
// its digest is that of the saved content (as for a docker-archive), so a
// tag given new content is imported anew, never served stale.
FoundImage find_or_import(const ImportRequest& request, const Settings& settings);

// The images of `cache` that `text` designates: a reference as `list` shows
// it (or any spelling of one: "ubuntu" is docker.io/library/ubuntu:latest),
// a digest, or a digest prefix of at least 6 hex digits.
std::vector<CachedImage> lookup_image(const ImageCache& cache, const std::string& text);

// A squashfs file given as the image (relative to `cwd`), with the metadata
// saved beside it when there is some. Throws when it cannot be read.
FoundImage read_squashfs_file(const SquashfsFile& file, const std::filesystem::path& cwd);

// An image that is already here, without any download: a squashfs file, or
// an image in the user's cache then the system caches (`start`, `create`).
// Throws not_found (saying how to import it) or invalid_argument (several
// images match).
FoundImage find_image(const std::string& text, const Settings& settings,
                      const std::filesystem::path& cwd);

}  // namespace deepops
