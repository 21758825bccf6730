#pragma once

#include <functional>
#include <optional>
#include <string>

namespace deepops {

// How library code reads variables: from a lookup its front end passes
// (the process's environment for the CLI, a chosen few for the keeper),
// never from getenv().
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

}  // namespace deepops

namespace deepops {

// The process's own variables, for a front end to pass on (deepops-ctr,
// the plugin in srun): the library itself never reads them.
EnvLookup process_env_lookup();

}  // namespace deepops
