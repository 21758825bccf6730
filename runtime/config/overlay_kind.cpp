#include "config/overlay_kind.hpp"

#include "util/error.hpp"

namespace deepops {

OverlayKind parse_overlay_kind(const std::string& text) {
  if (text == "auto" || text.empty()) return OverlayKind::automatic;
  if (text == "kernel") return OverlayKind::kernel;
  if (text == "fuse") return OverlayKind::fuse;
  throw Error(Errc::invalid_argument, "OVERLAY: '" + text + "' is not auto, kernel or fuse");
}

std::string to_string(OverlayKind kind) {
  switch (kind) {
    case OverlayKind::kernel:
      return "kernel";
    case OverlayKind::fuse:
      return "fuse";
    case OverlayKind::automatic:
      break;
  }
  return "auto";
}

}  // namespace deepops
