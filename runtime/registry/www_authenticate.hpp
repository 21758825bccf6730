#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace deepops {

// One challenge of a WWW-Authenticate header (RFC 9110 11.6.1), e.g.
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io"
struct AuthChallenge {
  std::string scheme;                         // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // names lowercased, values unquoted

  std::string param(const std::string& name) const;
};

// Parses every challenge in the header value. Malformed parts are skipped,
// never thrown: the header comes from a remote server, and a registry that
// garbles it gets a precise error later ("no usable challenge").
std::vector<AuthChallenge> parse_www_authenticate(std::string_view header);

}  // namespace deepops
