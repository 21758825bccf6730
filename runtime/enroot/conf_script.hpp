#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/mount_spec.hpp"
#include "util/env_lookup.hpp"

// `enroot start --conf SCRIPT`: a bash script that may define environ(),
// mounts(), hooks() and rc(), and set #ENROOT_* directives. It is the
// user's own script, run as the user, by bash, as Enroot runs it.
namespace deepops::enroot {

struct ConfScript {
  std::filesystem::path path;  // absolute
  std::string text;
  std::vector<std::pair<std::string, std::string>> environ;  // environ()'s KEY=VALUE lines
  std::vector<MountEntry> mounts;                            // mounts()'s fstab lines
  std::optional<std::string> rc;                             // rc()'s body
  bool has_hooks = false;                                    // hooks() is defined
};

// Reads SCRIPT, has bash check it (bash -n), then runs it once with the
// container's command as its arguments and prints what its functions
// print. Throws an Error naming the script when it is missing, is not
// valid bash, or fails.
ConfScript evaluate_conf_script(const std::filesystem::path& script,
                                const std::vector<std::string>& command, const EnvLookup& env);

// The sections of that run's output (exposed for the tests): each begins
// with a line "<marker> NAME" (environ, mounts, rc).
void parse_conf_output(ConfScript& conf, const std::string& output, const std::string& marker,
                       const EnvLookup& env);

// An executable hook (for hooks.d's turn) that sources the script and
// calls its hooks(), with Enroot's hook environment; written in `dir`.
std::filesystem::path write_conf_hook(const ConfScript& conf, const std::filesystem::path& dir);

}  // namespace deepops::enroot
