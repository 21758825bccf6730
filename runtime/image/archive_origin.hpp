#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "image/image_origin.hpp"

namespace deepops {

// An image archive: docker=false for oci-archive (a tar of an OCI layout),
// true for docker-archive (`docker save`, `skopeo copy ... docker-archive:`).
// It is unpacked (blobs only; no path may leave the folder) into a folder
// under scratch_parent, removed with the origin; a docker-archive is
// rewritten as an OCI layout and read through oci_layout_origin.
std::unique_ptr<ImageOrigin> archive_origin(bool docker, const std::filesystem::path& file,
                                            const std::string& tag,
                                            const std::filesystem::path& scratch_parent);

}  // namespace deepops
