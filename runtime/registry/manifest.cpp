#include "registry/manifest.hpp"

#include <sys/utsname.h>

#include "util/digest.hpp"
#include "util/error.hpp"

namespace deepops {
namespace {

using json = nlohmann::json;

[[noreturn]] void malformed(const std::string& what) {
  throw Error(Errc::corrupt, "malformed manifest: " + what,
              "the registry sent a broken document; retry, or report it to the registry's admin");
}

std::string string_field(const json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) malformed(std::string("missing \"") + key + "\"");
    return {};
  }
  if (!it->is_string()) malformed(std::string("\"") + key + "\" is not a string");
  return it->get<std::string>();
}

Descriptor parse_descriptor(const json& j) {
  if (!j.is_object()) malformed("a descriptor is not an object");
  Descriptor d;
  d.media_type = string_field(j, "mediaType", false);
  d.digest = string_field(j, "digest", true);
  if (!is_sha256_digest(d.digest)) malformed("unsupported or invalid digest '" + d.digest + "'");
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    malformed("descriptor " + d.digest + " has no valid size");
  }
  d.size = size->get<int64_t>();
  // No real blob comes near; the cap keeps sums of sizes far from overflow.
  constexpr int64_t kMaxBlobSize = int64_t{1} << 46;
  if (d.size > kMaxBlobSize) {
    malformed("descriptor " + d.digest + " declares " + std::to_string(d.size) +
              " bytes, more than any image blob (64 TiB)");
  }
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.platform = Platform{string_field(*p, "os", false), string_field(*p, "architecture", false),
                          string_field(*p, "variant", false)};
  }
  return d;
}

std::vector<std::string> string_list(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array())
    throw Error(Errc::corrupt, std::string("image config: \"") + key + "\" is not a list");
  for (const auto& v : *it) {
    if (!v.is_string())
      throw Error(Errc::corrupt, std::string("image config: \"") + key + "\" holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

std::string media_type::accept_header() {
  return "Accept: " + std::string(kOciIndex) + ", " + std::string(kOciManifest) + ", " +
         std::string(kDockerList) + ", " + std::string(kDockerManifest);
}

std::string Platform::to_string() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform parse_platform(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() == 1) parts.insert(parts.begin(), "linux");
  bool ok = parts.size() <= 3 && !parts[0].empty() && !parts[1].empty() &&
            (parts.size() < 3 || !parts[2].empty());
  if (!ok) {
    throw Error(Errc::invalid_argument, "invalid platform '" + std::string(text) + "'",
                "write ARCH or OS/ARCH[/VARIANT], e.g. amd64 or linux/arm64/v8");
  }
  return Platform{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
}

Platform host_platform() {
  utsname u{};
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return {"linux", "amd64", ""};
  if (m == "aarch64") return {"linux", "arm64", "v8"};
  if (m == "ppc64le") return {"linux", "ppc64le", ""};
  return {"linux", m, ""};
}

static std::variant<ImageManifest, ImageIndex> parse_manifest_json(std::string_view body,
                                                                   std::string_view content_type) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) malformed("not a JSON object");
  std::string type = string_field(j, "mediaType", false);
  if (type.empty()) type = std::string(content_type.substr(0, content_type.find(';')));
  if (auto v = j.find("schemaVersion"); v != j.end() && *v == 1) {
    throw Error(Errc::invalid_argument, "the registry only has a Docker schema 1 manifest",
                "schema 1 is deprecated; re-push the image with a current docker or skopeo");
  }
  if (type == media_type::kOciIndex || type == media_type::kDockerList ||
      (type.empty() && j.contains("manifests"))) {
    ImageIndex index{type.empty() ? std::string(media_type::kOciIndex) : type, {}};
    if (!j["manifests"].is_array()) malformed("\"manifests\" is not a list");
    for (const auto& d : j["manifests"]) index.manifests.push_back(parse_descriptor(d));
    return index;
  }
  if (type == media_type::kOciManifest || type == media_type::kDockerManifest ||
      (type.empty() && j.contains("layers"))) {
    ImageManifest m{type.empty() ? std::string(media_type::kOciManifest) : type, {}, {}};
    if (!j.contains("config")) malformed("missing \"config\"");
    m.config = parse_descriptor(j["config"]);
    if (!j["layers"].is_array()) malformed("\"layers\" is not a list");
    // Overlay stacks end near 500 layers, Docker's builds at 127.
    constexpr size_t kMaxLayers = 1000;
    if (j["layers"].size() > kMaxLayers)
      malformed(std::to_string(j["layers"].size()) + " layers, more than any image has (1000)");
    for (const auto& d : j["layers"]) m.layers.push_back(parse_descriptor(d));
    return m;
  }
  throw Error(Errc::invalid_argument, "unsupported manifest type '" + type + "'",
              "this is not a container image (an artifact or a signature?)");
}

std::variant<ImageManifest, ImageIndex> parse_manifest(std::string_view body,
                                                       std::string_view content_type) {
  try {
    return parse_manifest_json(body, content_type);
  } catch (const json::exception& e) {
    malformed(e.what());  // a field of the wrong JSON type
  }
}

const Descriptor& select_platform(const ImageIndex& index, const Platform& want) {
  const Descriptor* fallback = nullptr;
  std::string available;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    const Platform& p = *d.platform;
    if (p.os == "unknown") continue;  // attestation manifests from buildkit
    available += (available.empty() ? "" : ", ") + p.to_string();
    if (p.os != want.os || p.architecture != want.architecture) continue;
    if (p.variant == want.variant) return d;
    // arm64 images often omit the v8 variant, and vice versa.
    if (!fallback && (p.variant.empty() || want.variant.empty())) fallback = &d;
  }
  if (fallback) return *fallback;
  throw Error(Errc::not_found,
              "the image has no " + want.to_string() +
                  " variant (it has: " + (available.empty() ? "none listed" : available) + ")",
              "choose one with --arch");
}

LayerCompression layer_compression(std::string_view type) {
  if (type.ends_with("+gzip") || type == "application/vnd.docker.image.rootfs.diff.tar.gzip") {
    if (type.find("foreign") != std::string_view::npos ||
        type.find("nondistributable") != std::string_view::npos) {
      throw Error(
          Errc::invalid_argument, "foreign (non-distributable) layer '" + std::string(type) + "'",
          "such layers must be fetched from elsewhere; this image is probably a Windows image");
    }
    return LayerCompression::gzip;
  }
  if (type.ends_with("+zstd")) return LayerCompression::zstd;
  if (type == "application/vnd.oci.image.layer.v1.tar" || type.empty())
    return LayerCompression::none;
  throw Error(Errc::invalid_argument, "unsupported layer type '" + std::string(type) + "'",
              "encrypted and non-tar layers cannot be imported");
}

nlohmann::json ImageConfig::to_json() const {
  return json{{"architecture", architecture},
              {"os", os},
              {"env", env},
              {"entrypoint", entrypoint},
              {"cmd", cmd},
              {"working_dir", working_dir},
              {"user", user},
              {"labels", labels},
              {"volumes", volumes},
              {"diff_ids", diff_ids}};
}

ImageConfig ImageConfig::from_json(const nlohmann::json& j) try {
  ImageConfig c;
  c.architecture = j.value("architecture", "");
  c.os = j.value("os", "");
  c.env = j.value("env", std::vector<std::string>{});
  c.entrypoint = j.value("entrypoint", std::vector<std::string>{});
  c.cmd = j.value("cmd", std::vector<std::string>{});
  c.working_dir = j.value("working_dir", "");
  c.user = j.value("user", "");
  c.labels = j.value("labels", std::map<std::string, std::string>{});
  c.volumes = j.value("volumes", std::vector<std::string>{});
  c.diff_ids = j.value("diff_ids", std::vector<std::string>{});
  return c;
} catch (const json::exception& e) {
  throw Error(Errc::corrupt, std::string("stored image config is damaged: ") + e.what(),
              "remove the image with `deepops-ctr remove` and import it again");
}

static ImageConfig parse_image_config_json(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(Errc::corrupt, "the image config is not a JSON object");
  ImageConfig c;
  c.architecture = j.value("architecture", "");
  c.os = j.value("os", "");
  const json& cfg = j.contains("config") && j["config"].is_object() ? j["config"] : json::object();
  c.env = string_list(cfg, "Env");
  c.entrypoint = string_list(cfg, "Entrypoint");
  c.cmd = string_list(cfg, "Cmd");
  c.working_dir = cfg.value("WorkingDir", "");
  c.user = cfg.value("User", "");
  if (auto l = cfg.find("Labels"); l != cfg.end() && l->is_object()) {
    for (const auto& [k, v] : l->items()) {
      if (v.is_string()) c.labels[k] = v.get<std::string>();
    }
  }
  if (auto v = cfg.find("Volumes"); v != cfg.end() && v->is_object()) {
    for (const auto& [k, _] : v->items()) c.volumes.push_back(k);
  }
  if (auto r = j.find("rootfs"); r != j.end() && r->is_object())
    c.diff_ids = string_list(*r, "diff_ids");
  return c;
}

}  // namespace deepops

namespace deepops {
ImageConfig parse_image_config(std::string_view body) {
  try {
    return parse_image_config_json(body);
  } catch (const nlohmann::json::exception& e) {
    throw Error(Errc::corrupt, std::string("malformed image config: ") + e.what());
  }
}
}  // namespace deepops
