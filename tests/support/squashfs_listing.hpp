#pragma once
// Reading an image back with unsquashfs, for the tests of what writes images.

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>

#include "subprocess.hpp"

namespace deepops::test {

struct ListedEntry {
  std::string mode, owner, size, time, target;
};

// `unsquashfs -lln -UTC IMAGE`, keyed by path ("/", "/a"): a line such as
// "drwxr-xr-x 0/0   27 2024-01-01 00:00 squashfs-root/a -> b". Throws
// std::runtime_error with unsquashfs's output when it fails.
inline std::map<std::string, ListedEntry> list_squashfs(const std::filesystem::path& image) {
  const auto result = run_process({"unsquashfs", "-lln", "-UTC", image.string()});
  if (result.exit_code != 0) throw std::runtime_error("unsquashfs: " + result.output);
  static const std::regex kLine(
      R"(^(\S+) (\S+)\s+(.+?) (\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(.*?)(?: -> (.*))?$)");
  std::map<std::string, ListedEntry> out;
  std::istringstream lines(result.output);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, kLine)) continue;
    const std::string path = m[5].str().empty() ? "/" : m[5].str();
    out[path] = {m[1], m[2], m[3], m[4], m[6]};
  }
  return out;
}

}  // namespace deepops::test
