#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <variant>

#include "image/daemon_origin.hpp"
#include "registry/image_ref.hpp"

namespace deepops {

// A squashfs file given by path: a value that starts with '/' or '.'.
struct SquashfsFile {
  std::filesystem::path path;
  bool operator==(const SquashfsFile&) const = default;
};

// An image copied for an air-gapped site, read without a registry:
// "oci:DIR[:TAG]" (an OCI image layout folder), "oci-archive:FILE[:TAG]" (a
// tar of one), "docker-archive:FILE[:TAG]" (`docker save`), as skopeo
// names them. PATH itself has no ':'.
struct OfflineImage {
  enum class Format { oci_layout, oci_archive, docker_archive };
  Format format = Format::oci_layout;
  std::filesystem::path path;
  std::string tag;  // empty: the only image there
  bool operator==(const OfflineImage&) const = default;
};

// An image of a local Docker daemon or of the user's Podman storage, as
// Enroot names them: "dockerd://IMAGE[:TAG]", "podman://IMAGE[:TAG]". IMAGE
// is kept as the client names it ([HOST[:PORT]/]PATH, no Docker Hub
// expansion), TAG defaults to "latest". No digest: `save` takes tags.
struct DaemonImage {
  DaemonClient client = DaemonClient::docker;
  std::string name;
  std::string tag = "latest";
  std::string reference() const { return name + ":" + tag; }  // what `save` is given
  bool operator==(const DaemonImage&) const = default;
};

// Where an image comes from, as a user writes it: every front end (the
// CLI, --container-image) classifies its argument here, and only here.
using ImageSource = std::variant<RegistryImage, SquashfsFile, OfflineImage, DaemonImage>;

// Accepts a path ('/' or '.' first), an offline transport or a daemon image
// (above), the Pyxis/Enroot syntax [USER@][REGISTRY#]IMAGE[:TAG][@DIGEST],
// the docker style REGISTRY/IMAGE[:TAG][@DIGEST] and an optional docker://
// prefix.
// Throws deepops::Error (Errc::invalid_argument) naming the bad part and
// saying how to write it instead.
ImageSource parse_image_source(std::string_view text);

// "x.sqsh", "x.sqfs", "x.squashfs": a name that looks like a squashfs file.
bool has_squashfs_suffix(std::string_view name);

// How the source is shown in messages: as the user wrote it, normalised.
std::string describe(const ImageSource& source);

}  // namespace deepops
