#include "registry/image_ref.hpp"

#include <gtest/gtest.h>

#include <cctype>

#include "util/error.hpp"

namespace deepops {
namespace {

const std::string kSha = "sha256:" + std::string(64, 'a');

// "3_nvcr_io_nvidia_pytorch" rather than a byte dump, in ctest's list.
template <typename T>
std::string readable_name(const ::testing::TestParamInfo<T>& info) {
  std::string name = std::to_string(info.index) + "_";
  for (char c : info.param.input.substr(0, 40))
    name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

struct Case {
  std::string input;
  RegistryImage want;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.input; }

class ParsesRegistryImage : public ::testing::TestWithParam<Case> {};

TEST_P(ParsesRegistryImage, Normalises) {
  const Case& c = GetParam();
  RegistryImage got = parse_registry_image(c.input);
  EXPECT_EQ(got.user, c.want.user);
  EXPECT_EQ(got.registry, c.want.registry);
  EXPECT_EQ(got.repository, c.want.repository);
  EXPECT_EQ(got.tag, c.want.tag);
  EXPECT_EQ(got.digest, c.want.digest);
}

TEST_P(ParsesRegistryImage, CanonicalFormRoundTrips) {
  RegistryImage got = parse_registry_image(GetParam().input);
  RegistryImage again = parse_registry_image(got.canonical());
  got.user.clear();
  EXPECT_EQ(again, got) << got.canonical();
}

const char* kHub = "registry-1.docker.io";

INSTANTIATE_TEST_SUITE_P(
    Syntaxes, ParsesRegistryImage,
    ::testing::Values(
        Case{"ubuntu", {"", kHub, "library/ubuntu", "latest", ""}},
        Case{"ubuntu:22.04", {"", kHub, "library/ubuntu", "22.04", ""}},
        Case{"docker://ubuntu:22.04", {"", kHub, "library/ubuntu", "22.04", ""}},
        Case{"nvidia/cuda:12.4.1-base", {"", kHub, "nvidia/cuda", "12.4.1-base", ""}},
        Case{"docker.io/library/alpine", {"", kHub, "library/alpine", "latest", ""}},
        Case{"nvcr.io/nvidia/pytorch:24.05-py3",
             {"", "nvcr.io", "nvidia/pytorch", "24.05-py3", ""}},
        Case{"nvcr.io#nvidia/pytorch:24.05-py3",
             {"", "nvcr.io", "nvidia/pytorch", "24.05-py3", ""}},
        Case{"alice@nvcr.io#nvidia/pytorch:24.05-py3",
             {"alice", "nvcr.io", "nvidia/pytorch", "24.05-py3", ""}},
        Case{"$oauthtoken@nvcr.io#nvidia/pytorch",
             {"$oauthtoken", "nvcr.io", "nvidia/pytorch", "latest", ""}},
        Case{"127.0.0.1:15000/deepops/tiny", {"", "127.0.0.1:15000", "deepops/tiny", "latest", ""}},
        Case{"127.0.0.1:15000#deepops/tiny:v1", {"", "127.0.0.1:15000", "deepops/tiny", "v1", ""}},
        Case{"localhost/team/app:1", {"", "localhost", "team/app", "1", ""}},
        Case{"[::1]:5000/app", {"", "[::1]:5000", "app", "latest", ""}},
        Case{"Registry.Example.COM/a/b", {"", "registry.example.com", "a/b", "latest", ""}},
        Case{"ubuntu@" + kSha, {"", kHub, "library/ubuntu", "", kSha}},
        Case{"ubuntu:22.04@" + kSha, {"", kHub, "library/ubuntu", "22.04", kSha}},
        Case{"bob@ubuntu@" + kSha, {"bob", kHub, "library/ubuntu", "", kSha}},
        Case{"a/b/c/d.e_f__g--h", {"", kHub, "a/b/c/d.e_f__g--h", "latest", ""}},
        // Found by the fuzzer: a short registry name has no docker-style form.
        Case{"MyReg#team/app", {"", "myreg", "team/app", "latest", ""}}),
    readable_name<Case>);

struct BadCase {
  std::string input;
  std::string message_part;  // what() must name the problem
  std::string hint_part;     // and the hint must say what to do ("" = no hint required)
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.input; }

class RejectsImage : public ::testing::TestWithParam<BadCase> {};

TEST_P(RejectsImage, WithActionableError) {
  const BadCase& c = GetParam();
  try {
    (void)parse_registry_image(c.input);
    FAIL() << "accepted '" << c.input << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(c.message_part), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find(c.hint_part), std::string::npos) << e.hint();
  }
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, RejectsImage,
    ::testing::Values(
        BadCase{"", "empty", ""},
        BadCase{"NVIDIA/PyTorch", "lowercase", "did you mean 'nvidia/pytorch'"},
        BadCase{"ubuntu:", "tag ''", "128 letters"}, BadCase{"ubuntu:-bad", "tag '-bad'", ""},
        BadCase{"ubuntu:" + std::string(129, 'x'), "is not valid", ""},
        BadCase{"ubuntu@sha256:abc", "64", ""},
        BadCase{"ubuntu@md5:" + std::string(32, 'a'), "'md5' is not supported", "sha256"},
        BadCase{"nvcr.io#", "empty", ""},
        BadCase{"#nvidia/pytorch", "registry before '#' is empty", ""},
        BadCase{"a#b#c", "more than one '#'", ""}, BadCase{"host:99999/app", "port '99999'", ""},
        BadCase{"host:abc/app", "port 'abc'", ""},
        BadCase{"bad_host.io/app", "not a valid host name", ""},
        BadCase{"my image", "whitespace", "quoting"}, BadCase{"ubuntu\t", "whitespace", ""},
        BadCase{"a//b", "'' is not a valid image name component", ""},
        BadCase{"a/b-/c", "'b-'", "lowercase letters"}, BadCase{"a..b", "'a..b'", ""},
        BadCase{"dockerd://ubuntu", "local Docker", "deepops-ctr import dockerd://ubuntu"},
        BadCase{"http://example.com/x", "unknown scheme 'http://'", ""},
        BadCase{"docker:///abs", "a path is not a registry image", ""},
        BadCase{"@ubuntu", "user before '@' is empty", ""}),
    readable_name<BadCase>);

TEST(RegistryImage, ManifestReferencePrefersDigest) {
  EXPECT_EQ(parse_registry_image("a:1").manifest_reference(), "1");
  EXPECT_EQ(parse_registry_image("a:1@" + kSha).manifest_reference(), kSha);
}

}  // namespace
}  // namespace deepops
