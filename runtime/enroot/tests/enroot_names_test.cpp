// Enroot's default names and argument forms, as deepops-enroot reproduces them.
#include "enroot/enroot_names.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

namespace deepops::enroot {
namespace {

EnvLookup no_env() {
  return [](const std::string&) { return std::optional<std::string>(); };
}

TEST(EnrootNames, ImportFileAsEnrootNamesIt) {
  EXPECT_EQ(default_image_file("docker://nvcr.io#nvidia/pytorch:25.01-py3"),
            "nvidia+pytorch+25.01-py3.sqsh");
  EXPECT_EQ(default_image_file("docker://ubuntu:22.04"), "ubuntu+22.04.sqsh");
  EXPECT_EQ(default_image_file("docker://ubuntu"), "ubuntu+latest.sqsh");
  EXPECT_EQ(default_image_file("docker://user@127.0.0.1:5000#lab/busybox:1"), "lab+busybox+1.sqsh");
  EXPECT_EQ(default_image_file("docker://nvidia/cuda:12.4.1-base"), "nvidia+cuda+12.4.1-base.sqsh");
  EXPECT_EQ(default_image_file("dockerd://ubuntu:22.04"), "ubuntu+22.04.sqsh");
  EXPECT_EQ(default_image_file("podman://localhost/lab/x:1"), "localhost+lab+x+1.sqsh");
  EXPECT_EQ(default_image_file("podman://alpine"), "alpine.sqsh");
  EXPECT_EQ(default_image_file("docker-archive:/srv/img.tar"), "img.sqsh");
}

TEST(EnrootNames, AnythingButItsSchemesIsInvalid) {
  for (const char* uri : {"ubuntu", "./x.sqsh", "http://x", "docker://", "podman://", ""}) {
    try {
      (void)default_image_file(uri);
      ADD_FAILURE() << uri << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), std::string("Invalid argument: ") + uri);
      EXPECT_NE(e.hint().find("docker://"), std::string::npos);
    }
  }
}

TEST(EnrootNames, ContainerNameIsTheFileLessSqsh) {
  EXPECT_EQ(default_container_name("nvidia+pytorch+25.01-py3.sqsh"), "nvidia+pytorch+25.01-py3");
  EXPECT_EQ(default_container_name("/srv/images/ubuntu.sqsh"), "ubuntu");
  EXPECT_EQ(default_container_name("./img.squashfs"), "img.squashfs");  // Enroot strips .sqsh only
}

TEST(EnrootNames, MountIsAnFstabLineWithColons) {
  MountEntry bind = parse_enroot_mount("/data:/mnt/data", "/home/u", no_env());
  EXPECT_EQ(bind.source, "/data");
  EXPECT_EQ(bind.target, "/mnt/data");
  EXPECT_TRUE(bind.bind);
  MountEntry ro = parse_enroot_mount("/data:/d:none:bind,ro", "/home/u", no_env());
  EXPECT_TRUE(ro.read_only);
  MountEntry tmp = parse_enroot_mount("tmpfs:/scratch:tmpfs:size=1G", "/home/u", no_env());
  EXPECT_EQ(tmp.type, "tmpfs");
  EXPECT_EQ(tmp.target, "/scratch");
  MountEntry rel = parse_enroot_mount("./in:/in", "/home/u", no_env());
  EXPECT_EQ(rel.source, "/home/u/in");
}

TEST(EnrootNames, MalformedMountsAreRefusedAsEnrootRefusesThem) {
  for (const char* bad : {"", ":/x", "/x:", "/a::/b", "/a b:/c"}) {
    EXPECT_THROW(parse_enroot_mount(bad, "/", no_env()), Error) << bad;
  }
}

TEST(EnrootNames, EnvArgumentsNeedAVariableName) {
  EXPECT_TRUE(is_valid_env_argument("A"));
  EXPECT_TRUE(is_valid_env_argument("A_1=x=y"));
  EXPECT_TRUE(is_valid_env_argument("_X="));
  EXPECT_FALSE(is_valid_env_argument("1A=x"));
  EXPECT_FALSE(is_valid_env_argument("=x"));
  EXPECT_FALSE(is_valid_env_argument("A-B=x"));
}

}  // namespace
}  // namespace deepops::enroot
