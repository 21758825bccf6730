#include "usecases/image_source.hpp"

#include <array>
#include <optional>
#include <utility>

#include "util/error.hpp"

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
  const auto& o = std::get<OfflineImage>(source);
  for (const auto& t : kTransports) {
    if (t.format == o.format) {
      return std::string(t.prefix) + o.path.string() + (o.tag.empty() ? "" : ":" + o.tag);
    }
  }
  return o.path.string();
}

}  // namespace deepops
