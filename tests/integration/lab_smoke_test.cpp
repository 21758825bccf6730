// Smoke test of the test lab itself: a real Slurm that runs jobs as the
// unprivileged test user, and real registries serving the test images.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lab.hpp"

namespace deepops::test {
namespace {

using json = nlohmann::json;

std::string show(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         ", output:\n" + r.output;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Slurm, SrunRunsOneTaskPerNodeAsTheTestUser) {
  const Lab& lab = Lab::current();
  ProcessResult r = lab.run_as_user({"srun", "-N2", "bash", "-c", "echo $(hostname) $(id -un)"});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 2u) << show(r);
  for (const auto& l : lines) EXPECT_TRUE(l.ends_with(" " + lab.var("DEEPOPS_LAB_USER"))) << l;
  if (lab.netns()) {
    std::set<std::string> hosts(lines.begin(), lines.end());
    EXPECT_EQ(hosts.size(), 2u) << "each netns node has its own hostname:\n" << r.output;
  }
}

TEST(Slurm, SrunSpansEveryNodeWithItsOwnAddress) {
  const Lab& lab = Lab::current();
  std::string n = std::to_string(lab.nodes());
  ProcessResult r = lab.run_as_user({"srun", "-N" + n, "bash", "-c", "hostname -I"});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  auto lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), static_cast<size_t>(lab.nodes())) << show(r);
  if (lab.netns()) {
    std::set<std::string> addrs(lines.begin(), lines.end());
    EXPECT_EQ(addrs.size(), lines.size()) << r.output;
    for (const auto& a : addrs) EXPECT_TRUE(a.starts_with("10.250.")) << a;
  }
}

TEST(Slurm, SbatchWaitRunsTheBatchScript) {
  const Lab& lab = Lab::current();
  std::string out = lab.var("DEEPOPS_LAB_SHARED") + "/sbatch-" + std::to_string(getpid()) + ".out";
  ProcessResult r = lab.run_as_user(
      {"sbatch", "-N2", "--wait", "-o", out, "--wrap", "srun bash -c 'echo step on $(hostname)'"});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  auto lines = lines_of(read_file(out));
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) { return l.starts_with("step on "); }),
            2)
      << read_file(out);
  std::filesystem::remove(out);
}

TEST(Slurm, SbatchWaitReportsAFailingScript) {
  ProcessResult r =
      Lab::current().run_as_user({"sbatch", "--wait", "-o", "/dev/null", "--wrap", "exit 3"});
  EXPECT_NE(r.exit_code, 0) << show(r);
}

TEST(Slurm, OpenMpiHelloOverPmixAcrossNodes) {
  const Lab& lab = Lab::current();
  // Debian's Slurm 26.05 is built without PMIx (Debian bug 1149781).
  ProcessResult mpis = lab.run_as_user({"srun", "--mpi=list"});
  if (mpis.output.find("pmix") == std::string::npos) {
    GTEST_SKIP() << "this Slurm has no mpi/pmix plugin: " << mpis.output;
  }
  std::filesystem::path dest = lab.var("DEEPOPS_LAB_SHARED") + "/mpi_hello";
  std::filesystem::copy_file(DEEPOPS_MPI_HELLO, dest,
                             std::filesystem::copy_options::overwrite_existing);
  // Several slurmd on one host share /dev/shm; OpenMPI's vader transport
  // crashes there (tests/lab/README.md), so loopback mode uses TCP between ranks.
  std::string btl = lab.netns() ? "OMPI_MCA_btl=self,tcp" : "OMPI_MCA_btl=^vader";
  ProcessResult r = lab.run_as_user({"env", btl, "srun", "-N2", "--mpi=pmix", dest.string()});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.output.find("rank 0 of 2"), std::string::npos) << show(r);
  EXPECT_NE(r.output.find("rank 1 of 2"), std::string::npos) << show(r);
  auto lines = lines_of(r.output);
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) { return l.ends_with("sum of ranks 1"); }),
            2)
      << show(r);
}

const char* kAccept =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

json plain_manifest(const std::string& repo) {
  const Lab& lab = Lab::current();
  std::string url =
      "http://" + lab.var("DEEPOPS_LAB_REGISTRY") + "/v2/deepops/" + repo + "/manifests/latest";
  ProcessResult r = lab.run_as_user({"curl", "-fsS", "-H", kAccept, url});
  if (r.exit_code != 0) throw std::runtime_error("GET " + url + " failed: " + show(r));
  return json::parse(r.output);
}

TEST(Registry, PlainServesTheLayeredImage) {
  json m = plain_manifest("layered");
  EXPECT_EQ(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_GE(m["layers"].size(), 5u);
}

TEST(Registry, PlainServesZstdLayers) {
  json m = plain_manifest("zstd");
  ASSERT_FALSE(m["layers"].empty());
  for (const auto& layer : m["layers"]) {
    EXPECT_EQ(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
  }
}

TEST(Registry, PlainServesATwoArchitectureIndex) {
  json m = plain_manifest("multiarch");
  EXPECT_EQ(m["mediaType"], "application/vnd.oci.image.index.v1+json");
  std::set<std::string> archs;
  for (const auto& d : m["manifests"])
    archs.insert(d["platform"]["architecture"].get<std::string>());
  EXPECT_EQ(archs, (std::set<std::string>{"amd64", "arm64"}));
}

TEST(Registry, PlainServesDockerV2Schema2AndTheDebianImage) {
  EXPECT_EQ(plain_manifest("tiny-docker")["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(plain_manifest("tiny")["layers"].size(), 1u);
  EXPECT_EQ(plain_manifest("debian-openmpi")["layers"].size(), 2u);
}

class TlsRegistry : public ::testing::Test {
 protected:
  const Lab& lab = Lab::current();
  std::string url =
      "https://" + lab.var("DEEPOPS_LAB_REGISTRY_TLS") + "/v2/deepops/tiny/manifests/latest";
  std::string creds = lab.var("DEEPOPS_LAB_REGISTRY_USER") + ":" +
                      lines_of(read_file(lab.var("DEEPOPS_LAB_REGISTRY_PASSWORD_FILE"))).at(0);
};

TEST_F(TlsRegistry, AsksForBasicAuthWithoutCredentials) {
  ProcessResult r = lab.run_as_user(
      {"curl", "-sS", "-i", "--cacert", lab.var("DEEPOPS_LAB_CA"), "-H", kAccept, url});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.output.find(" 401 "), std::string::npos) << r.output;
  // Header names are case-insensitive, and HTTP/2 sends them lowercase.
  std::string lower = r.output;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  EXPECT_NE(lower.find("www-authenticate: basic realm=\"deepops-lab\""), std::string::npos)
      << r.output;
}

TEST_F(TlsRegistry, ServesTheManifestWithCredentialsAndTheLabCa) {
  ProcessResult r = lab.run_as_user(
      {"curl", "-fsS", "--cacert", lab.var("DEEPOPS_LAB_CA"), "-u", creds, "-H", kAccept, url});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(json::parse(r.output)["layers"].size(), 1u);
}

TEST_F(TlsRegistry, IsNotTrustedWithoutTheLabCa) {
  ProcessResult r = lab.run_as_user({"curl", "-fsS", "-u", creds, "-H", kAccept, url});
  EXPECT_EQ(r.exit_code, 60) << "curl should fail certificate verification: " << show(r);
}

TEST_F(TlsRegistry, RejectsAWrongPassword) {
  ProcessResult r =
      lab.run_as_user({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                       lab.var("DEEPOPS_LAB_CA"), "-u", "labuser:wrong", url});
  EXPECT_EQ(r.output, "401") << show(r);
}

}  // namespace
}  // namespace deepops::test
