// The seccomp filter makes id and owner changes report success without
// doing them: each test runs in a child process (a filter cannot be removed)
// and checks both the faked return value and that nothing changed.
#include "container/id_call_filter.hpp"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

namespace deepops {
namespace {

// Runs `body` in a child under the filter; the child's exit status is the
// number of the first failed check (0: all passed).
int under_filter(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    // Unprivileged callers need no_new_privs to install a filter; root in
    // CI does not, but the filter must not depend on it either way.
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    try {
      install_id_call_filter();
    } catch (...) {
      _exit(100);
    }
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

TEST(IdCallFilter, IdChangesReportSuccessAndChangeNothing) {
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  EXPECT_EQ(under_filter([&] {
              const uid_t other = uid == 4242 ? 4243 : 4242;
              gid_t groups[] = {65534};
              if (setuid(other) != 0 || getuid() != uid) return 1;
              if (setgid(other) != 0 || getgid() != gid) return 2;
              if (setresuid(other, other, other) != 0 || geteuid() != uid) return 3;
              if (setresgid(other, other, other) != 0 || getegid() != gid) return 4;
              if (setreuid(other, other) != 0 || getuid() != uid) return 5;
              if (setregid(other, other) != 0 || getgid() != gid) return 6;
              if (setgroups(1, groups) != 0) return 7;
              // setfsuid returns the previous fsuid: faked, 0; a query runs.
              if (setfsuid(other) != 0) return 8;
              if (static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1))) != uid) return 9;
              if (static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1))) != gid) return 10;
              return 0;
            }),
            0);
}

TEST(IdCallFilter, ChownReportsSuccessAndTheOwnerStays) {
  char path[] = "/tmp/id-call-filter.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  struct stat before {};
  ASSERT_EQ(fstat(fd, &before), 0);
  EXPECT_EQ(under_filter([&] {
              const uid_t other = before.st_uid + 4242;
              if (chown(path, other, other) != 0) return 1;
              if (lchown(path, other, other) != 0) return 2;
              if (fchown(fd, other, other) != 0) return 3;
              if (fchownat(AT_FDCWD, path, other, other, 0) != 0) return 4;
              return 0;
            }),
            0);
  struct stat after {};
  ASSERT_EQ(fstat(fd, &after), 0);
  EXPECT_EQ(after.st_uid, before.st_uid);
  EXPECT_EQ(after.st_gid, before.st_gid);
  close(fd);
  unlink(path);
}

TEST(IdCallFilter, OtherCallsAndRealErrorsAreUntouched) {
  EXPECT_EQ(under_filter([] {
              // A file that does not exist is still not there: open is not faked.
              if (open("/nonexistent/deepops", O_RDONLY) != -1 || errno != ENOENT) return 1;
              // The process shows the filter, as Pyxis users see it.
              FILE* status = std::fopen("/proc/self/status", "r");
              if (!status) return 2;
              char line[256];
              bool seen = false;
              while (std::fgets(line, sizeof(line), status))
                seen |= std::string(line) == "Seccomp:\t2\n";
              std::fclose(status);
              return seen ? 0 : 3;
            }),
            0);
}

}  // namespace
}  // namespace deepops
