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

TEST(ImageSource, DaemonSchemesAreDaemonImagesTaggedLatestByDefault) {
  using C = DaemonClient;
  EXPECT_EQ(std::get<DaemonImage>(parse_image_source("dockerd://busybox")),
            (DaemonImage{C::docker, "busybox", "latest"}));
  EXPECT_EQ(std::get<DaemonImage>(parse_image_source("podman://localhost/app:1")),
            (DaemonImage{C::podman, "localhost/app", "1"}));
  // A port is no tag; the name is kept as the client names it.
  EXPECT_EQ(std::get<DaemonImage>(parse_image_source("podman://localhost:5000/a/b")),
            (DaemonImage{C::podman, "localhost:5000/a/b", "latest"}));
  EXPECT_EQ(std::get<DaemonImage>(parse_image_source("dockerd://nvcr.io/nvidia/pytorch:24.05-py3")),
            (DaemonImage{C::docker, "nvcr.io/nvidia/pytorch", "24.05-py3"}));
  EXPECT_EQ(std::get<DaemonImage>(parse_image_source("dockerd://My-Host.io:80/a_b/c__d.e-f:V_1.x")),
            (DaemonImage{C::docker, "My-Host.io:80/a_b/c__d.e-f", "V_1.x"}));
  EXPECT_EQ(describe(parse_image_source("dockerd://busybox")), "dockerd://busybox:latest");
  EXPECT_EQ(describe(parse_image_source("podman://localhost/app:1")), "podman://localhost/app:1");
}

class BadDaemonImage : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(BadDaemonImage, IsRefusedNamingWhy) {
  const auto& [text, why] = GetParam();
  try {
    parse_image_source(text);
    ADD_FAILURE() << text << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("IMAGE[:TAG]"), std::string::npos) << e.hint();
  }
}

INSTANTIATE_TEST_SUITE_P(
    ImageSource, BadDaemonImage,
    ::testing::Values(
        std::pair{"dockerd://", "names no image"}, std::pair{"podman://-rm", "starts with '-'"},
        std::pair{"podman://--help", "starts with '-'"}, std::pair{"dockerd://a b", "whitespace"},
        std::pair{"dockerd://a\tb", "whitespace"}, std::pair{"dockerd://a;rm", "'a;rm'"},
        std::pair{"dockerd://$(id)", "'$(id)'"}, std::pair{"dockerd://Ubuntu", "'Ubuntu'"},
        std::pair{"dockerd://a:", "tag ''"}, std::pair{"dockerd://a:-x", "tag '-x'"},
        std::pair{"dockerd://a:b:c", "'a:b'"}, std::pair{"podman://a//b", "'' is not"},
        std::pair{"podman://a/", "'' is not"}, std::pair{"podman://a-/b", "'a-'"},
        std::pair{"podman://host:99x/a", "'host:99x' is not a valid host"},
        std::pair{"podman://-host.io/a", "starts with '-'"},
        std::pair{"dockerd://a@sha256:0000", "digest"}, std::pair{"dockerd://a\x7f", "non-ASCII"},
        std::pair{"dockerd://a\nb", "control"}));

TEST(ImageSource, LongNamesAndTagsOfADaemonImageAreRefused) {
  EXPECT_ERROR_MENTIONS(parse_image_source("podman://" + std::string(600, 'a')), "longer than 512");
  EXPECT_ERROR_MENTIONS(parse_image_source("podman://a:" + std::string(129, 't')), "not valid");
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
