// Pyxis's importer protocol as the keeper runs it: which images go through
// it, the URI and environment it gets, and how its answers are judged.
#include "importer_plugin.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "test_folder.hpp"
#include "util/error.hpp"

namespace deepops::spank {
namespace {
namespace fs = std::filesystem;

PlugstackConfig with_importer(const fs::path& importer) {
  PlugstackConfig c;
  c.importer = importer;
  c.runtime_path = "/run/deepops";
  return c;
}

StepInfo a_step() {
  StepInfo s;
  s.uid = 1000;
  s.gid = 100;
  s.job_id = "42";
  s.step_id = "3";
  s.node = "n1";
  s.job_env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/home/u"}};
  return s;
}

fs::path script(const deepops::test::TestFolder& dir, const std::string& body) {
  const fs::path p = dir / "importer.sh";
  std::ofstream(p) << "#!/bin/sh\n" << body;
  fs::permissions(p, fs::perms::owner_all);
  return p;
}

TEST(ImporterPlugin, OnlyRegistryAndDaemonImagesGoThroughIt) {
  const PlugstackConfig c = with_importer("/opt/importer");
  EXPECT_TRUE(uses_importer(c, "ubuntu:22.04"));
  EXPECT_TRUE(uses_importer(c, "nvcr.io#nvidia/pytorch:25.01-py3"));
  EXPECT_TRUE(uses_importer(c, "docker://ubuntu"));
  EXPECT_TRUE(uses_importer(c, "podman://localhost/app:1"));
  EXPECT_FALSE(uses_importer(c, "./img.sqsh"));
  EXPECT_FALSE(uses_importer(c, "/srv/img.sqsh"));
  EXPECT_FALSE(uses_importer(c, ""));
  EXPECT_FALSE(uses_importer(PlugstackConfig{}, "ubuntu"));
}

TEST(ImporterPlugin, TheUriIsEnrootsForm) {
  EXPECT_EQ(importer_uri("ubuntu:22.04"), "docker://ubuntu:22.04");
  EXPECT_EQ(importer_uri("nvcr.io#nvidia/pytorch:25.01-py3"),
            "docker://nvcr.io#nvidia/pytorch:25.01-py3");
  EXPECT_EQ(importer_uri("docker://ubuntu"), "docker://ubuntu");
  EXPECT_EQ(importer_uri("dockerd://ubuntu"), "dockerd://ubuntu");
}

TEST(ImporterPlugin, TheEnvironmentIsTheStepsWithPyxissVariables) {
  const auto env = importer_environment(with_importer("/x"), a_step(), Settings{});
  auto has = [&](const std::string& kv) {
    return std::find(env.begin(), env.end(), kv) != env.end();
  };
  EXPECT_TRUE(has("HOME=/home/u"));
  EXPECT_TRUE(has("PYXIS_RUNTIME_PATH=/run/deepops"));
  EXPECT_TRUE(has("PYXIS_VERSION=0.24.0"));
  EXPECT_TRUE(has("SLURM_JOB_UID=1000"));
  EXPECT_TRUE(has("SLURM_JOB_ID=42"));
  EXPECT_TRUE(has("SLURM_STEP_ID=3"));
}

TEST(ImporterPlugin, GetReturnsTheLastLineItPrints) {
  deepops::test::TestFolder dir("importer-plugin");
  std::ofstream(dir / "img.sqsh") << "not checked here";
  const fs::path importer =
      script(dir, "echo progress >&2\necho some line\necho " + (dir / "img.sqsh").string() + "\n");
  EXPECT_EQ(importer_get(with_importer(importer), a_step(), Settings{}, "ubuntu"),
            dir / "img.sqsh");
}

TEST(ImporterPlugin, ItsFailuresCarryItsStderr) {
  deepops::test::TestFolder dir("importer-plugin");
  auto message = [&](const std::string& body) {
    try {
      importer_get(with_importer(script(dir, body)), a_step(), Settings{}, "ubuntu");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string failed = message("echo 'no such image here' >&2\nexit 4\n");
  EXPECT_NE(failed.find("get docker://ubuntu"), std::string::npos) << failed;
  EXPECT_NE(failed.find("exit status 4"), std::string::npos) << failed;
  EXPECT_NE(failed.find("no such image here"), std::string::npos) << failed;
  EXPECT_NE(message("echo relative.sqsh\n").find("no absolute squashfs path"), std::string::npos);
  EXPECT_NE(message("true\n").find("no absolute squashfs path"), std::string::npos);
  EXPECT_NE(message("echo /no/such/file.sqsh\n").find("cannot be read"), std::string::npos);
}

TEST(ImporterPlugin, ReleaseFailsOnlyAsALogLine) {
  deepops::test::TestFolder dir("importer-plugin");
  StartRequest request;
  request.config = with_importer(script(dir, "echo 'busy' >&2\nexit 1\n"));
  request.step = a_step();
  request.request.image = "ubuntu";
  const KeeperLog log = importer_release(request, Settings{});
  EXPECT_TRUE(log.ok);
  ASSERT_EQ(log.lines.size(), 1u);
  EXPECT_NE(log.lines[0].find("busy"), std::string::npos);
  request.request.image = "./img.sqsh";  // not the importer's
  EXPECT_TRUE(importer_release(request, Settings{}).lines.empty());
}

}  // namespace
}  // namespace deepops::spank
