#include "usecases/image_source.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops {
namespace {

struct Transport {
  std::string_view prefix;
  OfflineImage::Format format;
};
constexpr std::array kTransports = {
    Transport{"oci:", OfflineImage::Format::oci_layout},
    Transport{"oci-archive:", OfflineImage::Format::oci_archive},
    Transport{"docker-archive:", OfflineImage::Format::docker_archive}};

std::optional<OfflineImage> parse_offline(std::string_view text) {
  for (const auto& t : kTransports) {
    if (!text.starts_with(t.prefix)) continue;
    std::string_view rest = text.substr(t.prefix.size());
    const size_t colon = rest.find(':');
    OfflineImage image{t.format, std::string(rest.substr(0, colon)),
                       colon == std::string_view::npos ? "" : std::string(rest.substr(colon + 1))};
    if (image.path.empty() || rest.find('\0') != std::string_view::npos) {
      throw Error(
          Errc::invalid_argument,
          "invalid image '" + std::string(text) + "': " + std::string(t.prefix) + " needs a path",
          "write " + std::string(t.prefix) + "PATH[:TAG]");
    }
    return image;
  }
  return std::nullopt;
}

struct DaemonScheme {
  std::string_view prefix;
  DaemonClient client;
};
constexpr std::array kDaemonSchemes = {DaemonScheme{"dockerd://", DaemonClient::docker},
                                       DaemonScheme{"podman://", DaemonClient::podman}};

[[noreturn]] void bad_daemon_image(std::string_view text, std::string_view prefix,
                                   const std::string& why) {
  throw Error(Errc::invalid_argument, "invalid image '" + std::string(text) + "': " + why,
              "write " + std::string(prefix) + "IMAGE[:TAG], e.g. " + std::string(prefix) +
                  "localhost/app:1");
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool all_of(std::string_view s, bool (*ok)(char)) { return std::all_of(s.begin(), s.end(), ok); }

// Docker's grammar: a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
bool valid_tag(std::string_view tag) {
  return !tag.empty() && tag.size() <= 128 && tag.front() != '.' && tag.front() != '-' &&
         all_of(tag, [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// HOST[:PORT]: letters, digits, '.' and '-', not first or last.
bool valid_host(std::string_view host) {
  std::string_view port;
  if (size_t colon = host.find(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty() || port.size() > 5 ||
        !all_of(port, [](char c) { return c >= '0' && c <= '9'; }))
      return false;
  }
  return !host.empty() && is_alnum(host.front()) && is_alnum(host.back()) &&
         all_of(host, [](char c) { return is_alnum(c) || c == '.' || c == '-'; });
}

// A path component: lowercase letters and digits, with '.', '_' or '-'
// between them. Looser than Docker's rule (no two separators in a row but
// "__"): nothing here can be read as an option or leave the argument, and
// the client has the last word on the rest.
bool valid_component(std::string_view c) {
  return !c.empty() && is_lower_alnum(c.front()) && is_lower_alnum(c.back()) &&
         all_of(c, [](char x) { return is_lower_alnum(x) || x == '.' || x == '_' || x == '-'; });
}

// The name's first component is a host when Docker would take it for one.
void check_daemon_name(std::string_view text, std::string_view prefix, std::string_view name) {
  const std::vector<std::string> parts = split(name, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool host = i == 0 && parts.size() > 1 &&
                      (part.find_first_of(".:") != std::string::npos || part == "localhost");
    if (host ? valid_host(part) : valid_component(part)) continue;
    bad_daemon_image(text, prefix,
                     "'" + part + "' is not a valid " + (host ? "host" : "image name component") +
                         (host ? "" : " (lowercase letters and digits, '.', '_' or '-' between)"));
  }
}

DaemonImage parse_daemon(std::string_view text, const DaemonScheme& scheme) {
  const std::string_view prefix = scheme.prefix;
  std::string_view rest = text.substr(prefix.size());
  if (rest.empty()) bad_daemon_image(text, prefix, "it names no image");
  if (rest.size() > 512) {
    bad_daemon_image(text.substr(0, prefix.size() + 64), prefix, "longer than 512 characters");
  }
  for (unsigned char c : rest) {
    if (c <= ' ' || c >= 0x7f) {
      bad_daemon_image(text, prefix, "it contains whitespace, a control or a non-ASCII character");
    }
  }
  // The client would take it for an option.
  if (rest.front() == '-') bad_daemon_image(text, prefix, "it starts with '-'");
  if (rest.find('@') != std::string_view::npos) {
    bad_daemon_image(text, prefix, "a digest cannot be saved from a daemon; give a tag");
  }
  DaemonImage image{scheme.client, std::string(rest), "latest"};
  const size_t colon = rest.rfind(':');
  const size_t slash = rest.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    image.name = std::string(rest.substr(0, colon));
    image.tag = std::string(rest.substr(colon + 1));
    if (!valid_tag(image.tag)) {
      bad_daemon_image(text, prefix,
                       "tag '" + image.tag +
                           "' is not valid (up to 128 letters, digits, '_', "
                           "'.' and '-', not starting with '.' or '-')");
    }
  }
  check_daemon_name(text, prefix, image.name);
  return image;
}

std::optional<DaemonImage> parse_daemon_image(std::string_view text) {
  for (const auto& scheme : kDaemonSchemes) {
    if (text.starts_with(scheme.prefix)) return parse_daemon(text, scheme);
  }
  return std::nullopt;
}

}  // namespace

bool has_squashfs_suffix(std::string_view s) {
  return s.ends_with(".sqsh") || s.ends_with(".squashfs") || s.ends_with(".sqfs");
}

ImageSource parse_image_source(std::string_view text) {
  if (!text.empty() && (text.front() == '/' || text.front() == '.')) {
    if (text.find('\0') != std::string_view::npos) {
      throw Error(Errc::invalid_argument, "invalid image path: it contains a NUL byte");
    }
    return SquashfsFile{std::filesystem::path(text)};
  }
  if (auto offline = parse_offline(text)) return *offline;
  if (auto daemon = parse_daemon_image(text)) return *daemon;
  // Pyxis treats "image.sqsh" as a Docker Hub name and fails later with an
  // unhelpful 401; say what was probably meant instead.
  if (has_squashfs_suffix(text) && text.find("://") == std::string_view::npos) {
    throw Error(Errc::invalid_argument,
                "invalid image '" + std::string(text) +
                    "': it looks like a squashfs file but is not a path",
                "to use a local file write './" + std::string(text) + "' or an absolute path");
  }
  return parse_registry_image(text);
}

std::string describe(const ImageSource& source) {
  if (const auto* r = std::get_if<RegistryImage>(&source)) return r->canonical();
  if (const auto* f = std::get_if<SquashfsFile>(&source)) return f->path.string();
  if (const auto* d = std::get_if<DaemonImage>(&source)) {
    for (const auto& s : kDaemonSchemes) {
      if (s.client == d->client) return std::string(s.prefix) + d->reference();
    }
  }
  const auto& o = std::get<OfflineImage>(source);
  for (const auto& t : kTransports) {
    if (t.format == o.format) {
      return std::string(t.prefix) + o.path.string() + (o.tag.empty() ? "" : ":" + o.tag);
    }
  }
  return o.path.string();
}

}  // namespace deepops
