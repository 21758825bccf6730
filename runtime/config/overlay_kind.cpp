#include "config/overlay_kind.hpp"

#include <array>
#include <utility>

#include "util/error.hpp"

namespace deepops {
namespace {

constexpr std::array<std::pair<OverlayKind, const char*>, 3> kNames = {
    {{OverlayKind::automatic, "auto"},
     {OverlayKind::kernel, "kernel"},
     {OverlayKind::fuse, "fuse"}}};

}  // namespace

OverlayKind parse_overlay_kind(const std::string& text) {
  if (text.empty()) return OverlayKind::automatic;
  for (const auto& [kind, name] : kNames) {
    if (text == name) return kind;
  }
  throw Error(Errc::invalid_argument, "OVERLAY: '" + text + "' is not auto, kernel or fuse");
}

std::string to_string(OverlayKind kind) {
  for (const auto& [k, name] : kNames) {
    if (k == kind) return name;
  }
  return "auto";
}

}  // namespace deepops
