#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace deepops {

// What kind of failure, so that front ends can choose an exit code or a
// message style without parsing text.
enum class Errc {
  invalid_argument,  // the user's input is malformed
  not_found,
  permission_denied,
  auth,  // registry credentials missing or rejected
  network,
  corrupt,  // data failed verification (digest, format)
  no_space,
  busy,
  internal,
};

const char* to_string(Errc code) noexcept;

// The Errc that best describes an errno value (EACCES: permission_denied, ...).
Errc errc_from_errno(int err) noexcept;

// The one exception type the runtime throws. `what()` says what went wrong,
// with the offending value; `hint()` says what the user can do about it.
class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message, std::string hint = {});

  Errc code() const noexcept { return code_; }
  const std::string& hint() const noexcept { return hint_; }

  // "message" or "message (hint)" : one line, for logs and srun's stderr.
  std::string describe() const;

 private:
  Errc code_;
  std::string hint_;
};

// An Error for a failed system call: "<what>: <strerror(err)>".
Error sys_error(const std::string& what, int err, std::string hint = {});

// After ENOSPC: "inodes" when the file system holding `path` has no inode
// left (many small files are the cause), else "space". ENOSPC says neither.
std::string exhausted_resource(const std::filesystem::path& path);

}  // namespace deepops
