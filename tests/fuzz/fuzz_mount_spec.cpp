// Mounts files and --mount arguments are user-written text that decides what
// the container sees. Invariants: parsing either returns or throws
// deepops::Error (nothing else, no crash), and every accepted mount stays
// inside the container: its target is absolute, normalised, without a ".."
// component, and "/" only to detach; a bind's source is an absolute host path.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/mount_spec.hpp"
#include "util/error.hpp"

namespace {

// Values that try to smuggle a climb, a blank or a separator in.
std::optional<std::string> lookup(const std::string& name) {
  static const std::map<std::string, std::string> vars = {
      {"HOME", "/home/fuzz"}, {"DOTS", ".."},     {"EMPTY", ""},     {"REL", "rel/dir"},
      {"SLASH", "/"},         {"COLON", "/a:/b"}, {"SPACE", "/a b"}, {"OPTS", "ro,x-create=dir"}};
  auto it = vars.find(name);
  if (it == vars.end()) return std::nullopt;
  return it->second;
}

void check(const deepops::MountEntry& m) {
  const std::string& t = m.target;
  if (t.empty() || t[0] != '/') std::abort();
  if (t == "/") {
    if (!m.detach) std::abort();
  } else {
    if (t.back() == '/') std::abort();
    size_t start = 1;
    while (start <= t.size()) {
      size_t end = t.find('/', start);
      if (end == std::string::npos) end = t.size();
      std::string_view part(t.data() + start, end - start);
      if (part.empty() || part == "." || part == "..") std::abort();
      start = end + 1;
    }
  }
  if (m.bind && (m.source.empty() || m.source[0] != '/' || !m.data.empty())) std::abort();
  if (m.type != "none" && m.type != "tmpfs" && m.type != "devpts" && m.type != "mqueue") {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const deepops::EnvLookup env = lookup;
  try {
    for (const auto& m : deepops::parse_mounts_text(text, env, "fuzz.fstab")) check(m);
  } catch (const deepops::Error&) {
  }
  try {
    check(deepops::parse_mount_argument(text, env));
  } catch (const deepops::Error&) {
  }
  // Each line as a --mount argument too: corpora hold several per file.
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    try {
      check(deepops::parse_mount_argument(text.substr(start, end - start), env));
    } catch (const deepops::Error&) {
    }
    start = end + 1;
  }
  return 0;
}
