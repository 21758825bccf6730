#pragma once

#include <filesystem>
#include <string>

namespace deepops {

// The path of one of the package's own programs, `name`, as installed
// beside the running one: in the same folder (a build tree, /usr/bin for
// the user-facing ones) or in ../libexec/deepops (the helpers). Throws
// not_found, saying to reinstall, when it is in neither.
std::filesystem::path installed_program(const std::string& name);

}  // namespace deepops
