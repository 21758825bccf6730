#include "identity.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <string>
#include <vector>

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

}  // namespace deepops::spank
