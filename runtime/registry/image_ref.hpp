#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <variant>

namespace deepops {

inline constexpr std::string_view kDockerHubRegistry = "registry-1.docker.io";

// An image in an OCI/Docker registry, normalised: the registry is always set
// (Docker Hub is registry-1.docker.io), Docker Hub's official images carry
// their "library/" prefix, and the tag is "latest" unless a tag or a digest
// was given.
struct RegistryImage {
  std::string user;        // USER@ of the Enroot syntax: whose credentials to use
  std::string registry;    // host[:port]
  std::string repository;  // e.g. "nvidia/pytorch"
  std::string tag;         // empty when only a digest was given
  std::string digest;      // "sha256:<64 hex>", or empty

  // registry/repository[:tag][@digest]: unique, and parses back to *this
  // (less the user).
  std::string canonical() const;
  // What to ask the registry's /v2/<repository>/manifests/ endpoint for.
  std::string manifest_reference() const { return digest.empty() ? tag : digest; }

  bool operator==(const RegistryImage&) const = default;
};

// A squashfs file given by path: a value that starts with '/' or '.'.
struct SquashfsFile {
  std::filesystem::path path;
  bool operator==(const SquashfsFile&) const = default;
};

using ImageSource = std::variant<RegistryImage, SquashfsFile>;

// Parses what a user gives --container-image or `deepops-ctr import`. Accepts
// the Pyxis/Enroot syntax [USER@][REGISTRY#]IMAGE[:TAG][@DIGEST], the docker
// style REGISTRY/IMAGE[:TAG][@DIGEST], an optional docker:// prefix, and a
// path to a squashfs file. Throws deepops::Error (Errc::invalid_argument)
// naming the bad part and saying how to write it instead.
ImageSource parse_image_source(std::string_view text);

// The same, for contexts where only a registry image makes sense.
RegistryImage parse_registry_image(std::string_view text);

}  // namespace deepops
