#include "enroot/enroot_names.hpp"

#include <algorithm>

#include "registry/image_ref.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops::enroot {
namespace {

std::string replace_all(std::string text, std::string_view chars, char with) {
  std::replace_if(
      text.begin(), text.end(), [&](char c) { return chars.find(c) != std::string_view::npos; },
      with);
  return text;
}

Error invalid(std::string_view uri) {
  return Error(Errc::invalid_argument, "Invalid argument: " + std::string(uri),
               "give docker://[USER@][REGISTRY#]IMAGE[:TAG], dockerd://IMAGE[:TAG] or "
               "podman://IMAGE[:TAG]");
}

std::string file_stem(std::string_view path) {
  std::string name(path.substr(
      path.find_last_of('/') == std::string_view::npos ? 0 : path.find_last_of('/') + 1));
  const size_t colon = name.find(':');
  if (colon != std::string::npos) name.resize(colon);
  const size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  return name;
}

}  // namespace

bool is_import_uri(std::string_view uri) {
  for (std::string_view scheme :
       {"docker://", "dockerd://", "podman://", "docker-archive:", "oci-archive:", "oci:"}) {
    if (uri.starts_with(scheme) && uri.size() > scheme.size()) return true;
  }
  return false;
}

std::string default_image_file(std::string_view uri) {
  if (!is_import_uri(uri)) throw invalid(uri);
  if (uri.starts_with("dockerd://") || uri.starts_with("podman://")) {
    std::string image(uri.substr(uri.find("://") + 3));
    return replace_all(image, ":/", '+') + ".sqsh";
  }
  if (!uri.starts_with("docker://")) {
    return file_stem(uri.substr(uri.find(':') + 1)) + ".sqsh";
  }
  const RegistryImage image = parse_registry_image(uri);
  std::string repository = image.repository;
  if (image.registry == kDockerHubRegistry && repository.starts_with("library/")) {
    repository = repository.substr(8);
  }
  const std::string tag = image.tag.empty() ? image.digest : image.tag;
  return replace_all(repository, "/", '+') + (tag.empty() ? "" : "+" + tag) + ".sqsh";
}

std::string default_container_name(std::string_view image_path) {
  std::string name(image_path.substr(image_path.find_last_of('/') == std::string_view::npos
                                         ? 0
                                         : image_path.find_last_of('/') + 1));
  if (name.ends_with(".sqsh")) name.resize(name.size() - 5);
  return name;
}

MountEntry parse_enroot_mount(std::string_view arg, const std::string& cwd, const EnvLookup& env) {
  const bool well_formed = !arg.empty() && arg.front() != ':' && arg.back() != ':' &&
                           arg.find("::") == std::string_view::npos &&
                           arg.find_first_of(" \t\n") == std::string_view::npos;
  if (!well_formed) {
    throw Error(Errc::invalid_argument, "Invalid argument: " + std::string(arg),
                "write -m SRC:DST[:TYPE[:OPTIONS]], an fstab line with ':' between its fields, "
                "e.g. -m /data:/data or -m tmpfs:/scratch:tmpfs:size=1G");
  }
  std::vector<std::string> fields = split(std::string(arg), ':');
  for (auto& f : fields) f = decode_fstab_escapes(substitute_env(f, env));
  MountEntry m = parse_mount_fields(fields, "-m " + std::string(arg), true);
  if (is_relative_source(m)) resolve_relative_source(m, cwd);
  return m;
}

bool is_valid_env_argument(std::string_view arg) {
  const std::string_view name = arg.substr(0, arg.find('='));
  return !name.empty() && is_valid_env_name(name);
}

}  // namespace deepops::enroot
