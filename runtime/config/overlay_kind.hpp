#pragma once

#include <string>

namespace deepops {

// How the writable layer goes over the image: the kernel's overlayfs (Linux
// >= 5.11 allows it in a user namespace), or fuse-overlayfs where it cannot.
// automatic tries the kernel first.
enum class OverlayKind { automatic, kernel, fuse };

// "auto", "kernel" or "fuse"; throws Error(invalid_argument) otherwise.
OverlayKind parse_overlay_kind(const std::string& text);
// The other way: "auto", "kernel" or "fuse".
std::string to_string(OverlayKind kind);

}  // namespace deepops
