#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace deepops {

// Where to reach a registry instead of (or before) itself.
struct Endpoint {
  std::string scheme;  // "https" or "http"
  std::string host;    // host[:port]
  std::string prefix;  // path before the repository, e.g. "dockerhub-proxy", or empty

  std::string url() const;  // scheme://host[/prefix]
};

// "https://mirror:5000[/prefix]" (the scheme is required: an admin who
// writes http:// has chosen plain HTTP for that mirror).
Endpoint parse_endpoint(std::string_view url);

struct MirrorRule {
  std::vector<Endpoint> endpoints;  // tried in order
  bool fallback = true;             // then the registry itself
};

// Registry mirrors for air-gapped and rate-limited sites, read from JSON:
//   {"mirrors": {"docker.io": {"endpoints": ["https://mirror.site:5000"], "fallback": true},
//                "nvcr.io":   {"endpoints": ["https://nvcr-cache.site/nvcr"], "fallback": false}}}
// Registry names are normalised as image references are (docker.io and
// registry-1.docker.io are one key).
class MirrorConfig {
 public:
  // A missing file means no mirrors; a malformed one is an Error naming it.
  static MirrorConfig load(const std::filesystem::path& path);
  static MirrorConfig parse(std::string_view json, const std::string& source);

  // Adds "REGISTRY=URL" (the --mirror flag): tried before the file's.
  void add(std::string_view registry_equals_url);
  const MirrorRule* rule_for(const std::string& registry) const;

 private:
  std::map<std::string, MirrorRule> rules_;
};

}  // namespace deepops
