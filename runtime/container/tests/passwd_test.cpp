// The container's /etc/passwd and /etc/group: the image's entries, minus the
// ones that would shadow the caller, plus root, nobody and the caller.
#include "container/passwd.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace deepops {
namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

HostUser alice() {
  HostUser u;
  u.uid = 1000;
  u.gid = 1000;
  u.name = "alice";
  u.group = "staff";
  u.home = "/home/alice";
  u.shell = "/bin/zsh";
  u.gecos = "Alice Liddell";
  return u;
}

const std::string kDebianPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "ubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

const std::string kDebianGroup =
    "root:x:0:\n"
    "daemon:x:1:\n"
    "staff:x:50:\n"
    "ubuntu:x:1000:\n"
    "nogroup:x:65534:\n";

TEST(MergePasswd, ReplacesTheImageUserWithTheSameUid) {
  auto out = merge_passwd(kDebianPasswd, alice(), 1000, 1000, "/bin/bash");
  EXPECT_EQ(lines(out), (std::vector<std::string>{
                            "root:x:0:0:root:/root:/bin/bash",
                            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
                            "alice:x:1000:1000:Alice Liddell:/home/alice:/bin/bash",
                        }));
  EXPECT_EQ(out.back(), '\n');
}

TEST(MergePasswd, DropsImageEntriesWithTheUsersName) {
  auto out = merge_passwd("alice:x:1001:1001::/home/a:/bin/sh\nbob:x:1002:1002::/b:/bin/sh\n",
                          alice(), 1000, 100, "/bin/sh");
  EXPECT_EQ(lines(out), (std::vector<std::string>{
                            "root:x:0:0:root:/root:/bin/sh",
                            "bob:x:1002:1002::/b:/bin/sh",
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
                            "alice:x:1000:100:Alice Liddell:/home/alice:/bin/sh",
                        }));
}

TEST(MergePasswd, MatchesWholeFieldsOnly) {
  // "alice2" and uid 10000 are other users; "1000" in a gecos field is no uid.
  const std::string image =
      "alice2:x:1001:1001::/h:/bin/sh\n"
      "u:x:10000:1000::/h:/bin/sh\n"
      "v:x:7:7:1000:/h:/bin/sh\n";
  auto got = lines(merge_passwd(image, alice(), 1000, 1000, "/bin/sh"));
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[1], "alice2:x:1001:1001::/h:/bin/sh");
  EXPECT_EQ(got[2], "u:x:10000:1000::/h:/bin/sh");
  EXPECT_EQ(got[3], "v:x:7:7:1000:/h:/bin/sh");
}

TEST(MergePasswd, AnEmptyImageGetsRootNobodyAndTheUser) {
  for (const char* image : {"", "\n", "\n\n\n"}) {
    EXPECT_EQ(lines(merge_passwd(image, alice(), 1000, 1000, "/bin/sh")),
              (std::vector<std::string>{
                  "root:x:0:0:root:/root:/bin/sh",
                  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
                  "alice:x:1000:1000:Alice Liddell:/home/alice:/bin/sh",
              }))
        << "'" << image << "'";
  }
}

TEST(MergePasswd, KeepsTheImagesRootAndNobody) {
  auto got = lines(merge_passwd("toor:x:0:0:custom:/root:/bin/ash\nnobody:x:99:99::/:/bin/false",
                                alice(), 1000, 1000, "/bin/sh"));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "toor:x:0:0:custom:/root:/bin/ash",
                     "nobody:x:99:99::/:/bin/false",
                     "alice:x:1000:1000:Alice Liddell:/home/alice:/bin/sh",
                 }));
}

TEST(MergePasswd, RemappedRootAddsNoUser) {
  // --remap-root: the user is uid 0 inside, and the image's root stays.
  auto got = lines(merge_passwd(kDebianPasswd, alice(), 0, 0, "/bin/sh"));
  EXPECT_EQ(got, lines(kDebianPasswd));
  got = lines(merge_passwd("daemon:x:1:1::/:/bin/sh\n", alice(), 0, 0, "/bin/sh"));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "root:x:0:0:root:/root:/bin/sh",
                     "daemon:x:1:1::/:/bin/sh",
                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
                 }));
}

TEST(MergePasswd, ShortAndOddLinesAreKept) {
  auto got = lines(merge_passwd("# comment\nshort\nx:y\n", alice(), 1000, 1000, "/bin/sh"));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "root:x:0:0:root:/root:/bin/sh",
                     "# comment",
                     "short",
                     "x:y",
                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
                     "alice:x:1000:1000:Alice Liddell:/home/alice:/bin/sh",
                 }));
}

TEST(MergePasswd, EachNameAndUidAppearsOnce) {
  auto got = lines(
      merge_passwd(kDebianPasswd + "alice:x:5:5::/:/bin/sh\n", alice(), 1000, 1000, "/bin/sh"));
  int alices = 0, uid1000 = 0;
  for (const auto& l : got) {
    alices += l.starts_with("alice:");
    uid1000 += l.find(":x:1000:") != std::string::npos;
  }
  EXPECT_EQ(alices, 1);
  EXPECT_EQ(uid1000, 1);
}

TEST(MergeGroup, ReplacesTheImageGroupWithTheSameGidOrName) {
  auto out = merge_group(kDebianGroup, alice(), 1000);
  EXPECT_EQ(lines(out), (std::vector<std::string>{
                            "root:x:0:",
                            "daemon:x:1:",
                            "nogroup:x:65534:",
                            "staff:x:1000:alice",
                        }));
  EXPECT_EQ(out.back(), '\n');
}

TEST(MergeGroup, AnEmptyImageGetsRootNogroupAndTheUsersGroup) {
  EXPECT_EQ(lines(merge_group("", alice(), 1000)), (std::vector<std::string>{
                                                       "root:x:0:",
                                                       "nogroup:x:65534:",
                                                       "staff:x:1000:alice",
                                                   }));
}

TEST(MergeGroup, AnyGroup65534CountsAsNogroup) {
  // Red Hat images call it "nobody".
  auto got = lines(merge_group("root:x:0:\nnobody:x:65534:\n", alice(), 1000));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "root:x:0:",
                     "nobody:x:65534:",
                     "staff:x:1000:alice",
                 }));
}

TEST(MergeGroup, RemappedRootAddsNoGroup) {
  EXPECT_EQ(lines(merge_group(kDebianGroup, alice(), 0)), lines(kDebianGroup));
  EXPECT_EQ(lines(merge_group("users:x:100:\n", alice(), 0)), (std::vector<std::string>{
                                                                  "root:x:0:",
                                                                  "users:x:100:",
                                                                  "nogroup:x:65534:",
                                                              }));
}

TEST(MergeGroup, MatchesWholeFieldsOnly) {
  auto got = lines(merge_group("staffers:x:1001:\nbig:x:10000:\n", alice(), 1000));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "root:x:0:",
                     "staffers:x:1001:",
                     "big:x:10000:",
                     "nogroup:x:65534:",
                     "staff:x:1000:alice",
                 }));
}

// APT would switch to `_apt` and fail under the seccomp filter (Enroot drops
// the same entries).
TEST(MergePasswd, DropsAptsSandboxUser) {
  auto got = lines(merge_passwd(
      "root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n", alice(),
      0, 0, "/bin/sh"));
  EXPECT_EQ(got, (std::vector<std::string>{
                     "root:x:0:0:root:/root:/bin/bash",
                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"}));
  EXPECT_EQ(lines(merge_group("root:x:0:\n_apt:x:42:\n", alice(), 0)),
            (std::vector<std::string>{"root:x:0:", "nogroup:x:65534:"}));
}

}  // namespace
}  // namespace deepops
