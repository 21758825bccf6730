#include "privileges.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "deepops/error.hpp"

namespace deepops::spank {

UserIdentity current_identity(uid_t uid, gid_t gid) {
  UserIdentity who{uid, gid, {}};
  int n = getgroups(0, nullptr);
  if (n > 0) {
    who.groups.resize(static_cast<size_t>(n));
    n = getgroups(n, who.groups.data());
    who.groups.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  return who;
}

UserIdentity identity_of(uid_t uid, gid_t gid) {
  UserIdentity who{uid, gid, {gid}};
  passwd pw{}, *found = nullptr;
  std::string buf(16384, '\0');
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found) return who;
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    if (getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) return who;
  }
  groups.resize(static_cast<size_t>(n));
  who.groups = groups;
  return who;
}

void become_user(const UserIdentity& who) {
  // slurmstepd's real uid is root: regain it, then drop everything at once.
  if (geteuid() != 0 && seteuid(0) != 0) throw sys_error("seteuid(0)", errno);
  if (setgroups(who.groups.size(), who.groups.data()) != 0) throw sys_error("setgroups", errno);
  if (setresgid(who.gid, who.gid, who.gid) != 0) throw sys_error("setresgid", errno);
  if (setresuid(who.uid, who.uid, who.uid) != 0) throw sys_error("setresuid", errno);
  if (prctl(PR_SET_DUMPABLE, 1) != 0) throw sys_error("prctl(PR_SET_DUMPABLE)", errno);
}

void prepare_runtime_path(const std::filesystem::path& runtime_path, const UserIdentity& who) {
  if (runtime_path.empty()) return;
  if (geteuid() != 0 && seteuid(0) != 0) throw sys_error("seteuid(0)", errno);
  if (setegid(0) != 0) throw sys_error("setegid(0)", errno);
  if (mkdir(runtime_path.c_str(), 0755) != 0 && errno != EEXIST) {
    throw sys_error("cannot create runtime_path " + runtime_path.string(), errno,
                    "fix runtime_path in plugstack.conf");
  }
  const auto mine = runtime_path / std::to_string(who.uid);
  if (mkdir(mine.c_str(), 0700) != 0 && errno != EEXIST) {
    throw sys_error("cannot create " + mine.string(), errno);
  }
  // Through a descriptor that refuses symlinks: runtime_path may be a shared
  // folder where someone else put a link by that name.
  int fd = open(mine.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    throw sys_error(mine.string() + " is not a folder", errno, "an admin should remove it");
  }
  int rc = fchown(fd, who.uid, who.gid) == 0 && fchmod(fd, 0700) == 0 ? 0 : errno;
  close(fd);
  if (rc != 0) {
    throw sys_error("cannot hand " + mine.string() + " to uid " + std::to_string(who.uid), rc);
  }
}

}  // namespace deepops::spank
