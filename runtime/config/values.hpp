#pragma once

#include <cstdint>
#include <string>
#include <vector>

// The grammar of setting values, one for every front end (deepops.conf,
// DEEPOPS_* and ENROOT_* variables, command-line flags, plugstack.conf).
// `what` names where the value came from ("/etc/deepops/deepops.conf:3:
// IMPORT_MAX_SIZE", "environment (DEEPOPS_ALLOW_HTTP)", "--max-size"), and
// every error starts with it.
namespace deepops {

// "123", "64M", "1.5T", "256GiB", "10 kb": bytes, where K, M, G, T and P are
// powers of 1024 (either case, with an optional "i" and "B"), and a fraction
// is allowed with a suffix. 0 is a size; keys that need more check it.
uint64_t parse_size(const std::string& value, const std::string& what);

// yes/no, y/n, true/false, on/off, 1/0, in any case, as Enroot's
// configuration takes them; "" is no.
bool parse_bool(const std::string& value, const std::string& what);

// A boolean, or a list of hosts (HOST[:PORT], separated by commas or
// spaces; "*" is any host): a yes is {"*"}, a no is {}. ALLOW_HTTP is one:
// Enroot's ENROOT_ALLOW_HTTP is yes/no, ours also names registries.
std::vector<std::string> parse_host_list(const std::string& value, const std::string& what);

// Whole seconds from 0 to `max`: "30", "30s", "2m", "1h" (no fraction).
uint64_t parse_seconds(const std::string& value, const std::string& what, uint64_t max);

}  // namespace deepops
