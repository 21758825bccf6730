#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/env_lookup.hpp"

namespace deepops {

struct Credential {
  std::string login;
  std::string password;
  std::string source;  // "~/.config/enroot/.credentials line 3": named in errors
};

// Where registry credentials come from, in the order they are consulted.
struct CredentialFiles {
  std::filesystem::path enroot_netrc;   // $ENROOT_CONFIG_PATH/.credentials
  std::filesystem::path docker_config;  // $DOCKER_CONFIG/config.json or ~/.docker/config.json
  std::string home;                     // shown as "~" in messages

  // The user's files, from the variables that Enroot and Docker read (HOME,
  // XDG_CONFIG_HOME, ENROOT_CONFIG_PATH, DOCKER_CONFIG).
  static CredentialFiles from_environment(const EnvLookup& env);
};

// One "machine" entry of an Enroot credentials file (netrc syntax).
struct NetrcEntry {
  std::string machine;
  std::string login;
  std::string password;  // may be "$(command)": run by lookup_credential, not here
  int line = 0;
};

// Parses netrc text. Tokens are whitespace-separated; "default" and
// "macdef" are accepted and ignored. Never throws on odd input.
std::vector<NetrcEntry> parse_netrc(std::string_view text);

// Docker's config.json: the "auths" map of registry -> base64("user:pass").
// Returns nothing for a registry without an entry; throws Error(invalid_argument)
// naming the file when the JSON itself is broken.
std::optional<Credential> docker_config_credential(std::string_view json_text,
                                                   const std::string& registry,
                                                   const std::string& source);

// The credential for `registry` (host[:port]), preferring an entry whose
// login is `user` when one is given (the USER@ of an image reference).
// Enroot's file wins over Docker's. A "$(command)" password is run with
// /bin/sh as the calling user, as Enroot does, and its trimmed output used.
std::optional<Credential> lookup_credential(const CredentialFiles& files,
                                            const std::string& registry,
                                            const std::string& user = {});

// Registry names that mean the same host in credential files
// (Docker Hub has several spellings).
std::vector<std::string> credential_aliases(const std::string& registry);

}  // namespace deepops
