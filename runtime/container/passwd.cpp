#include "container/passwd.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace deepops {
namespace {

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Field `n` (0-based) of a colon-separated line, or "" when it has fewer.
std::string field(const std::string& line, int n) {
  size_t start = 0;
  for (int i = 0; i < n; ++i) {
    start = line.find(':', start);
    if (start == std::string::npos) return {};
    ++start;
  }
  return line.substr(start, line.find(':', start) - start);
}

bool has_entry(const std::vector<std::string>& lines, int field_no, const std::string& value) {
  for (const auto& l : lines) {
    if (field(l, field_no) == value) return true;
  }
  return false;
}

}  // namespace

HostUser HostUser::current(const std::string& home_fallback) {
  HostUser u;
  u.uid = getuid();
  u.gid = getgid();
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* pwp = nullptr;
  if (getpwuid_r(u.uid, &pw, buf.data(), buf.size(), &pwp) == 0 && pwp) {
    u.name = pw.pw_name;
    u.home = pw.pw_dir;
    u.shell = pw.pw_shell;
    u.gecos = pw.pw_gecos;
  } else {
    // Unknown to NSS (e.g. LDAP down): still run, with a made-up name.
    u.name = "user" + std::to_string(u.uid);
    u.home = home_fallback;
    u.shell = "/bin/sh";
  }
  struct group gr {};
  struct group* grp = nullptr;
  if (getgrgid_r(u.gid, &gr, buf.data(), buf.size(), &grp) == 0 && grp) {
    u.group = gr.gr_name;
  } else {
    u.group = "group" + std::to_string(u.gid);
  }
  return u;
}

// APT, run as root, switches its download methods to `_apt` and then checks
// that the switch happened; under the seccomp filter it did not, and every
// download fails ("Could not switch group"). Without the user, APT stays
// root, as it does under Enroot, which drops the same entries.
constexpr std::string_view kAptSandboxUser = "_apt";

std::string merge_passwd(std::string_view image_passwd, const HostUser& user, uid_t uid, gid_t gid,
                         const std::string& shell) {
  std::vector<std::string> kept;
  const std::string uid_text = std::to_string(uid);
  for (const auto& l : lines_of(image_passwd)) {
    if (uid != 0 && (field(l, 0) == user.name || field(l, 2) == uid_text)) continue;
    if (field(l, 0) == kAptSandboxUser) continue;
    kept.push_back(l);
  }
  if (!has_entry(kept, 2, "0")) kept.insert(kept.begin(), "root:x:0:0:root:/root:/bin/sh");
  if (!has_entry(kept, 0, "nobody")) {
    kept.push_back("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin");
  }
  if (uid != 0) {
    kept.push_back(user.name + ":x:" + uid_text + ":" + std::to_string(gid) + ":" + user.gecos +
                   ":" + user.home + ":" + shell);
  }
  std::string out;
  for (const auto& l : kept) out += l + "\n";
  return out;
}

std::string merge_group(std::string_view image_group, const HostUser& user, gid_t gid) {
  std::vector<std::string> kept;
  const std::string gid_text = std::to_string(gid);
  for (const auto& l : lines_of(image_group)) {
    if (gid != 0 && (field(l, 0) == user.group || field(l, 2) == gid_text)) continue;
    if (field(l, 0) == kAptSandboxUser) continue;
    kept.push_back(l);
  }
  if (!has_entry(kept, 2, "0")) kept.insert(kept.begin(), "root:x:0:");
  if (!has_entry(kept, 0, "nogroup") && !has_entry(kept, 2, "65534")) {
    kept.push_back("nogroup:x:65534:");
  }
  if (gid != 0) kept.push_back(user.group + ":x:" + gid_text + ":" + user.name);
  std::string out;
  for (const auto& l : kept) out += l + "\n";
  return out;
}

}  // namespace deepops
