#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
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

// Reads up to `size` bytes into `buffer`, returning how many; 0 at the end.
// Throws deepops::Error when the stream fails.
using StreamReader = std::function<size_t(char* buffer, size_t size)>;

// A docker-archive read once, front to back, from a stream that need not be
// seekable (`docker save` writing into a pipe), unpacked as above. An error
// that `read` throws is rethrown as it is. `reference` names the origin (and
// the source in messages).
std::unique_ptr<ImageOrigin> docker_archive_stream_origin(
    const std::string& reference, const StreamReader& read,
    const std::filesystem::path& scratch_parent);

}  // namespace deepops
