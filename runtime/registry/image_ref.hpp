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

// Parses a registry image (see usecases/image_source.hpp for every form a
// user may give). Throws deepops::Error (Errc::invalid_argument) naming the
// bad part and saying how to write it instead.
RegistryImage parse_registry_image(std::string_view text);

}  // namespace deepops
