#include "registry/image_ref.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops {
namespace {

constexpr size_t kMaxInput = 4096;
constexpr size_t kMaxRepository = 255;
constexpr size_t kMaxTag = 128;

[[noreturn]] void bad(const std::string& what, std::string_view input, std::string hint = {}) {
  throw Error(Errc::invalid_argument,
              "invalid image reference '" + std::string(input) + "': " + what, std::move(hint));
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// One path component of a repository: [a-z0-9]+ joined by '.', '_', "__" or
// runs of '-', as the distribution spec has it.
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (is_lower_alnum(ch)) continue;
    if (ch == '.' || ch == '_') {
      bool double_underscore = ch == '_' && c[i + 1] == '_';
      if (double_underscore) ++i;
      if (!is_lower_alnum(c[i + 1])) return false;
      continue;
    }
    if (ch == '-') {
      while (c[i + 1] == '-') ++i;
      if (!is_lower_alnum(c[i + 1])) return false;
      continue;
    }
    return false;
  }
  return true;
}

void check_repository(const std::string& repo, std::string_view input) {
  if (repo.empty()) bad("the image name is empty", input);
  if (repo.size() > kMaxRepository) bad("the image name is longer than 255 characters", input);
  if (repo != to_lower(repo)) {
    bad("image names must be lowercase", input, "did you mean '" + to_lower(repo) + "'?");
  }
  size_t start = 0;
  while (true) {
    size_t slash = repo.find('/', start);
    std::string_view comp = std::string_view(repo).substr(start, slash - start);
    if (!valid_component(comp)) {
      bad("'" + std::string(comp) + "' is not a valid image name component", input,
          "use lowercase letters, digits, and '.', '_', '-' between them");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

void check_tag(const std::string& tag, std::string_view input) {
  bool ok = !tag.empty() && tag.size() <= kMaxTag && (is_alnum(tag[0]) || tag[0] == '_');
  ok = ok && std::all_of(tag.begin(), tag.end(),
                         [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
  if (!ok) {
    bad("tag '" + tag + "' is not valid", input,
        "tags are up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'");
  }
}

void check_digest(const std::string& digest, std::string_view input) {
  size_t colon = digest.find(':');
  std::string algo = digest.substr(0, colon);
  size_t want = algo == "sha256" ? 64 : algo == "sha512" ? 128 : 0;
  if (want == 0) {
    bad("digest algorithm '" + algo + "' is not supported", input,
        "use a sha256 digest, as 'docker inspect' or the registry reports it");
  }
  std::string hex = colon == std::string::npos ? "" : digest.substr(colon + 1);
  if (hex.size() != want || !std::all_of(hex.begin(), hex.end(), is_hex)) {
    bad("digest '" + digest + "' must be " + algo + ": followed by " + std::to_string(want) +
            " lowercase hex digits",
        input);
  }
}

void check_registry(const std::string& registry, std::string_view input) {
  std::string_view host = registry;
  size_t colon = host.rfind(':');
  bool bracketed = !host.empty() && host.front() == '[';
  if (bracketed) {
    size_t close = host.find(']');
    if (close == std::string::npos) bad("registry '" + registry + "' has an unclosed '['", input);
    colon = close + 1 < host.size() ? close + 1 : std::string::npos;
    if (colon != std::string::npos && host[colon] != ':')
      bad("bad registry '" + registry + "'", input);
  }
  if (colon != std::string::npos) {
    std::string_view port = host.substr(colon + 1);
    bool digits =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(std::string(port)) > 65535) {
      bad("registry port '" + std::string(port) + "' is not a number from 1 to 65535", input);
    }
    host = host.substr(0, colon);
  }
  if (bracketed) return;  // an IPv6 literal; the resolver judges the rest
  bool ok = !host.empty() && is_alnum(host.front()) && is_alnum(host.back()) &&
            std::all_of(host.begin(), host.end(),
                        [](char c) { return is_alnum(c) || c == '.' || c == '-'; });
  if (!ok) bad("registry host '" + std::string(host) + "' is not a valid host name", input);
}

// Docker's rule: the first component names a registry when it looks like a
// host (has a '.' or a ':', or is "localhost") and more components follow.
bool first_component_is_registry(std::string_view rest) {
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view first = rest.substr(0, slash);
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost";
}

std::string normalise_registry(std::string registry) {
  registry = to_lower(registry);
  if (registry.empty() || registry == "docker.io" || registry == "index.docker.io") {
    return std::string(kDockerHubRegistry);
  }
  return registry;
}

// A digest suffix is "@algo:hex"; any other '@' belongs to USER@.
bool looks_like_digest(std::string_view s) {
  size_t colon = s.find(':');
  return colon != std::string_view::npos && colon > 0 &&
         std::all_of(s.begin(), s.begin() + static_cast<long>(colon), is_lower_alnum);
}

void check_characters(std::string_view text) {
  if (text.size() > kMaxInput) bad("longer than 4096 characters", text.substr(0, 64));
  for (unsigned char c : text) {
    if (c <= ' ' || c >= 0x7f) {
      bad("it contains whitespace, a control or a non-ASCII character", text,
          "check the quoting in your script");
    }
  }
}

std::string_view strip_scheme(std::string_view text) {
  constexpr std::string_view kDocker = "docker://";
  if (text.starts_with(kDocker)) return text.substr(kDocker.size());
  if (text.starts_with("dockerd://") || text.starts_with("podman://")) {
    bad("it names an image of a local Docker or Podman daemon, not of a registry", text,
        "import it: deepops-ctr import " + std::string(text));
  }
  size_t scheme = text.find("://");
  if (scheme != std::string_view::npos) {
    bad("unknown scheme '" + std::string(text.substr(0, scheme)) + "://'", text,
        "use docker://, a registry name, or a path to a squashfs file");
  }
  return text;
}

}  // namespace

std::string RegistryImage::canonical() const {
  // A short registry name such as "myreg" is only expressible in the Enroot
  // form: docker style would read "myreg/app" as a Docker Hub repository.
  bool docker_style = first_component_is_registry(registry + "/" + repository);
  std::string out = registry + (docker_style ? "/" : "#") + repository;
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

RegistryImage parse_registry_image(std::string_view input) {
  check_characters(input);
  std::string_view text = strip_scheme(input);
  if (text.empty()) bad("the image name is empty", input);
  if (text.front() == '/' || text.front() == '.') {
    bad("a path is not a registry image", input, "give the image as [REGISTRY/]NAME[:TAG]");
  }

  RegistryImage image;
  std::string rest(text);

  size_t at = rest.rfind('@');
  if (at != std::string::npos && looks_like_digest(std::string_view(rest).substr(at + 1))) {
    image.digest = rest.substr(at + 1);
    rest.resize(at);
  }
  size_t hash = rest.find('#');
  size_t user_at = rest.find('@');
  if (user_at != std::string::npos && (hash == std::string::npos || user_at < hash)) {
    image.user = rest.substr(0, user_at);
    rest.erase(0, user_at + 1);
    if (image.user.empty()) bad("the user before '@' is empty", input);
    hash = rest.find('#');
  }
  if (rest.find('@') != std::string::npos) {
    bad("unexpected '@'", input, "a digest is written NAME@sha256:<64 hex digits>");
  }
  if (hash != std::string::npos) {
    image.registry = rest.substr(0, hash);
    rest.erase(0, hash + 1);
    if (image.registry.empty()) bad("the registry before '#' is empty", input);
    if (rest.find('#') != std::string::npos) bad("more than one '#'", input);
  } else if (first_component_is_registry(rest)) {
    size_t slash = rest.find('/');
    image.registry = rest.substr(0, slash);
    rest.erase(0, slash + 1);
  }

  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    image.tag = rest.substr(colon + 1);
    rest.resize(colon);
    check_tag(image.tag, input);
  }
  if (!image.registry.empty()) check_registry(image.registry, input);
  image.registry = normalise_registry(image.registry);
  if (image.registry == kDockerHubRegistry && rest.find('/') == std::string::npos) {
    rest = "library/" + rest;
  }
  check_repository(rest, input);
  image.repository = std::move(rest);
  if (!image.digest.empty()) check_digest(image.digest, input);
  if (image.tag.empty() && image.digest.empty()) image.tag = "latest";
  return image;
}

}  // namespace deepops
