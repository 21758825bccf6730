#include "util/installed_program.hpp"

#include <unistd.h>

#include "util/error.hpp"

namespace deepops {

std::filesystem::path installed_program(const std::string& name) {
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  for (const auto& candidate : {self / name, self / ".." / "libexec" / "deepops" / name}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal();
  }
  throw Error(Errc::not_found, name + " is not installed beside " + self.string(),
              "reinstall the deepops-containers package");
}

}  // namespace deepops
