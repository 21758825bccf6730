#include "registry/mirrors.hpp"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "registry/image_ref.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

// The registry part of a reference, normalised the way image references are.
std::string normalise_registry(const std::string& registry) {
  return parse_registry_image(registry + "/x").registry;
}

}  // namespace

std::string Endpoint::url() const {
  return scheme + "://" + host + (prefix.empty() ? "" : "/" + prefix);
}

Endpoint parse_endpoint(std::string_view url) {
  Endpoint e;
  size_t sep = url.find("://");
  e.scheme = sep == std::string_view::npos ? "" : std::string(url.substr(0, sep));
  if (e.scheme != "https" && e.scheme != "http") {
    throw Error(Errc::invalid_argument,
                "mirror '" + std::string(url) + "' needs an https:// or http:// scheme");
  }
  std::string rest(url.substr(sep + 3));
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t slash = rest.find('/');
  e.host = rest.substr(0, slash);
  if (slash != std::string::npos) e.prefix = rest.substr(slash + 1);
  // Reuse the image reference rules to validate host[:port] and the prefix.
  try {
    (void)parse_registry_image(e.host + "/" + (e.prefix.empty() ? "x" : e.prefix + "/x"));
  } catch (const Error& err) {
    throw Error(Errc::invalid_argument,
                "mirror '" + std::string(url) + "' is not a valid URL: " + err.what());
  }
  return e;
}

MirrorConfig MirrorConfig::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path.string());
}

MirrorConfig MirrorConfig::parse(std::string_view text, const std::string& source) {
  auto fail = [&](const std::string& what) -> Error {
    return Error(
        Errc::invalid_argument, source + ": " + what,
        R"(expected {"mirrors": {"REGISTRY": {"endpoints": ["https://HOST[:PORT][/PREFIX]"], "fallback": true}}})");
  };
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw fail("not a JSON object");
  MirrorConfig config;
  auto mirrors = j.find("mirrors");
  if (mirrors == j.end()) return config;
  if (!mirrors->is_object()) throw fail("\"mirrors\" is not an object");
  for (const auto& [registry, rule_json] : mirrors->items()) {
    if (!rule_json.is_object() || !rule_json.contains("endpoints") ||
        !rule_json["endpoints"].is_array()) {
      throw fail("mirrors of '" + registry + "' need an \"endpoints\" list");
    }
    MirrorRule rule;
    for (const auto& url : rule_json["endpoints"]) {
      if (!url.is_string()) throw fail("an endpoint of '" + registry + "' is not a string");
      try {
        rule.endpoints.push_back(parse_endpoint(url.get<std::string>()));
      } catch (const Error& e) {
        throw fail(e.what());
      }
    }
    if (rule_json.contains("fallback")) {
      if (!rule_json["fallback"].is_boolean())
        throw fail("\"fallback\" of '" + registry + "' is not true or false");
      rule.fallback = rule_json["fallback"].get<bool>();
    }
    try {
      config.rules_[normalise_registry(registry)] = std::move(rule);
    } catch (const Error& e) {
      throw fail("'" + registry + "' is not a registry name");
    }
  }
  return config;
}

void MirrorConfig::add(std::string_view spec) {
  size_t eq = spec.find('=');
  if (eq == std::string_view::npos) {
    throw Error(Errc::invalid_argument, "--mirror '" + std::string(spec) + "' is not REGISTRY=URL",
                "e.g. --mirror docker.io=https://mirror.site:5000");
  }
  std::string registry = normalise_registry(std::string(spec.substr(0, eq)));
  MirrorRule& rule = rules_[registry];
  rule.endpoints.insert(rule.endpoints.begin(), parse_endpoint(spec.substr(eq + 1)));
}

const MirrorRule* MirrorConfig::rule_for(const std::string& registry) const {
  auto it = rules_.find(registry);
  return it == rules_.end() ? nullptr : &it->second;
}

}  // namespace deepops
