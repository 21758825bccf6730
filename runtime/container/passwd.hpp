#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace deepops {

// The calling user as the host's passwd/group databases know them.
struct HostUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
  std::string group;
  std::string home;
  std::string shell;
  std::string gecos;

  // getpwuid(getuid()); a user unknown to NSS (LDAP down) gets a made-up
  // name and `home_fallback` (the front end's $HOME).
  static HostUser current(const std::string& home_fallback = "/");
};

// The container's /etc/passwd: the image's lines minus any that reuse the
// user's name or uid, plus root, nobody and the user (as `uid` inside).
std::string merge_passwd(std::string_view image_passwd, const HostUser& user, uid_t uid, gid_t gid,
                         const std::string& shell);

// The container's /etc/group, built the same way for the user's primary group.
std::string merge_group(std::string_view image_group, const HostUser& user, gid_t gid);

}  // namespace deepops
