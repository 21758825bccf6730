#include "util/error.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace deepops {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid argument";
    case Errc::not_found:
      return "not found";
    case Errc::permission_denied:
      return "permission denied";
    case Errc::auth:
      return "authentication failed";
    case Errc::network:
      return "network error";
    case Errc::corrupt:
      return "corrupt data";
    case Errc::no_space:
      return "no space left";
    case Errc::busy:
      return "busy";
    case Errc::internal:
      return "internal error";
  }
  return "unknown error";
}

Errc errc_from_errno(int err) noexcept {
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      return Errc::permission_denied;
    case ENOENT:
    case ENOTDIR:
      return Errc::not_found;
    case ENOSPC:
    case EDQUOT:
      return Errc::no_space;
    case EBUSY:
      return Errc::busy;
    case EINVAL:
    case ELOOP:
    case EXDEV:
      return Errc::invalid_argument;
    default:
      return Errc::internal;
  }
}

Error sys_error(const std::string& what, int err, std::string hint) {
  return Error(errc_from_errno(err), what + ": " + std::strerror(err), std::move(hint));
}

std::string exhausted_resource(const std::filesystem::path& path) {
  struct statvfs fs_info {};
  std::filesystem::path probe = path;
  while (::statvfs(probe.c_str(), &fs_info) != 0 && probe.has_relative_path()) {
    probe = probe.parent_path();  // the file itself may not exist
  }
  return fs_info.f_files > 0 && fs_info.f_favail == 0 ? "inodes" : "space";
}

Error::Error(Errc code, const std::string& message, std::string hint)
    : std::runtime_error(message), code_(code), hint_(std::move(hint)) {}

std::string Error::describe() const {
  if (hint_.empty()) return what();
  return std::string(what()) + " (" + hint_ + ")";
}

}  // namespace deepops
