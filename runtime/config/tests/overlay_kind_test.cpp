// OVERLAY: the writable layer's kind, as the settings and the CLI spell it.
#include "config/overlay_kind.hpp"

#include <gtest/gtest.h>

#include "error_matchers.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

const std::optional<Errc> kErrorCode = Errc::invalid_argument;

TEST(OverlayKind, ParsesEachName) {
  EXPECT_EQ(parse_overlay_kind("auto"), OverlayKind::automatic);
  EXPECT_EQ(parse_overlay_kind("kernel"), OverlayKind::kernel);
  EXPECT_EQ(parse_overlay_kind("fuse"), OverlayKind::fuse);
}

TEST(OverlayKind, EmptyMeansAuto) { EXPECT_EQ(parse_overlay_kind(""), OverlayKind::automatic); }

TEST(OverlayKind, ToStringRoundTrips) {
  for (OverlayKind kind : {OverlayKind::automatic, OverlayKind::kernel, OverlayKind::fuse}) {
    EXPECT_EQ(parse_overlay_kind(to_string(kind)), kind) << to_string(kind);
  }
  EXPECT_EQ(to_string(OverlayKind::automatic), "auto");
  EXPECT_EQ(to_string(OverlayKind::kernel), "kernel");
  EXPECT_EQ(to_string(OverlayKind::fuse), "fuse");
  for (const char* name : {"auto", "kernel", "fuse"}) {
    EXPECT_EQ(to_string(parse_overlay_kind(name)), name);
  }
}

TEST(OverlayKind, RefusesAnythingElseQuotingIt) {
  // Names are exact: no case folding, no blanks, no aliases.
  for (const char* bad : {"Kernel", "FUSE", "Auto", " fuse", "kernel ", "overlay", "fuse-overlayfs",
                          "automatic", "0", "none"}) {
    SCOPED_TRACE(bad);
    EXPECT_ERROR_MENTIONS(parse_overlay_kind(bad), "OVERLAY", "'" + std::string(bad) + "'",
                          "auto, kernel or fuse");
  }
}

}  // namespace
}  // namespace deepops
