// Every form of image argument, classified in one place.
#include "usecases/image_source.hpp"

#include <gtest/gtest.h>

#include "error_matchers.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

const std::optional<Errc> kErrorCode = Errc::invalid_argument;

TEST(ImageSource, PathsAreSquashfsFiles) {
  EXPECT_EQ(std::get<SquashfsFile>(parse_image_source("./img.sqsh")).path, "./img.sqsh");
  EXPECT_EQ(std::get<SquashfsFile>(parse_image_source("/srv/images/a b.sqsh")).path,
            "/srv/images/a b.sqsh");
  EXPECT_EQ(std::get<SquashfsFile>(parse_image_source("../x")).path, "../x");
}

TEST(ImageSource, RegistryNamesAreRegistryImages) {
  ImageSource src = parse_image_source("nvcr.io/nvidia/pytorch:24.05-py3");
  ASSERT_TRUE(std::holds_alternative<RegistryImage>(src));
  EXPECT_EQ(std::get<RegistryImage>(src).canonical(), "nvcr.io/nvidia/pytorch:24.05-py3");
  EXPECT_EQ(describe(parse_image_source("docker://ubuntu")),
            "registry-1.docker.io/library/ubuntu:latest");
}

TEST(ImageSource, OfflineTransportsAreOfflineImages) {
  using F = OfflineImage::Format;
  EXPECT_EQ(std::get<OfflineImage>(parse_image_source("oci:/srv/layout:24.05")),
            (OfflineImage{F::oci_layout, "/srv/layout", "24.05"}));
  EXPECT_EQ(std::get<OfflineImage>(parse_image_source("oci-archive:img.tar")),
            (OfflineImage{F::oci_archive, "img.tar", ""}));
  EXPECT_EQ(std::get<OfflineImage>(parse_image_source("docker-archive:/a/b.tar:x")),
            (OfflineImage{F::docker_archive, "/a/b.tar", "x"}));
  EXPECT_EQ(describe(parse_image_source("docker-archive:/a/b.tar:x")), "docker-archive:/a/b.tar:x");
  EXPECT_ERROR_MENTIONS(parse_image_source("oci:"), "oci: needs a path");
  EXPECT_ERROR_MENTIONS(parse_image_source("oci-archive::tag"), "needs a path");
}

TEST(ImageSource, ASquashfsNameThatIsNoPathSaysHowToWriteIt) {
  EXPECT_ERROR_MENTIONS(parse_image_source("image.sqsh"), "looks like a squashfs file");
  try {
    parse_image_source("image.sqsh");
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("./image.sqsh"), std::string::npos) << e.hint();
  }
}

}  // namespace
}  // namespace deepops
