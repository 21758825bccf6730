#include "job_options.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "deepops/error.hpp"
#include "deepops/image_ref.hpp"
#include "deepops/settings.hpp"

namespace deepops::spank {
namespace fs = std::filesystem;
namespace {

Error bad(std::string_view option, const std::string& message, std::string hint = {}) {
  return Error(Errc::invalid_argument, "--" + std::string(option) + ": " + message,
               std::move(hint));
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool option_bool(std::string_view option, const std::string& value) {
  try {
    return parse_bool(value, "--" + std::string(option));
  } catch (const Error&) {
    throw bad(option, "'" + value + "' is not a yes/no value", "use 1/true/yes/y or 0/false/no/n");
  }
}

std::string required(std::string_view option, const char* optarg) {
  if (!optarg || !*optarg) throw bad(option, "needs a value");
  return optarg;
}

std::string env_name_of(std::string_view option) {
  std::string name(option.substr(std::string_view("container-").size()));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == '-' ? '_' : static_cast<char>(std::toupper(c));
  });
  return name;
}

}  // namespace

const std::vector<OptionInfo>& container_options() {
  static const std::vector<OptionInfo> options = {
      {"container-image", "[USER@][REGISTRY#]IMAGE[:TAG]|PATH",
       "the container image: a registry reference, or a squashfs file (./x.sqsh)"},
      {"container-mounts", "SRC:DST[:FLAGS][,SRC:DST...]",
       "bind mount[s] inside the container; FLAGS joined by '+', e.g. ro+rprivate"},
      {"container-workdir", "PATH", "working directory inside the container"},
      {"container-name", "NAME[:auto|create|exec|no_exec]",
       "name the container, to reuse it in later steps"},
      {"container-save", "PATH", "save the container's state as a squashfs file after the step"},
      {"container-mount-home", nullptr, "bind your home folder (the default is the site's)"},
      {"no-container-mount-home", nullptr, "do not bind your home folder"},
      {"container-remap-root", nullptr, "be uid 0 inside the container (no privilege outside)"},
      {"no-container-remap-root", nullptr, "keep your uid inside the container"},
      {"container-entrypoint", nullptr, "run the image's ENTRYPOINT before the command"},
      {"no-container-entrypoint", nullptr, "do not run the image's ENTRYPOINT"},
      {"container-entrypoint-log", nullptr, "show the ENTRYPOINT's output"},
      {"container-writable", nullptr, "make the container's / writable (in memory)"},
      {"container-readonly", nullptr, "keep the container's / read-only"},
      {"container-env", "NAME[,NAME...]", "these job variables override the image's values"},
      {"container-unshare", "net,ipc,uts", "give the container its own network/IPC/UTS namespace"},
  };
  return options;
}

std::vector<MountEntry> parse_container_mounts(std::string_view value, const EnvLookup& env) {
  std::vector<MountEntry> out;
  for (const auto& item : split(value, ',')) {
    if (item.empty()) continue;
    const std::string origin = "--container-mounts entry '" + item + "'";
    auto parts = split(substitute_env(item, env), ':');
    for (auto& p : parts) p = decode_fstab_escapes(p);
    if (parts.size() > 3 || parts[0].empty() || (parts.size() >= 2 && parts[1].empty())) {
      throw Error(Errc::invalid_argument, origin + ": expected SRC[:DST[:FLAGS]]",
                  "e.g. /data:/data:ro, tmpfs:/scratch, umount:/opt/unwanted");
    }
    std::string options;
    if (parts.size() == 3) {
      for (const auto& f : split(parts[2], '+')) options += (options.empty() ? "" : ",") + f;
    }
    auto with = [&](const std::string& more) {
      return options.empty() ? more : more + "," + options;
    };
    const std::string target = parts.size() >= 2 ? parts[1] : parts[0];
    if (parts[0] == "tmpfs") {
      out.push_back(parse_mount_fields({"tmpfs", target, "tmpfs", with("x-create=dir")}, origin));
    } else if (parts[0] == "umount") {
      out.push_back(parse_mount_fields({"none", target, "none", with("x-detach")}, origin));
    } else {
      out.push_back(
          parse_mount_fields({parts[0], target, "none", with("rbind,x-create=auto")}, origin));
    }
  }
  return out;
}

ContainerRequest::Name parse_container_name(std::string_view value) {
  auto colon = value.rfind(':');
  ContainerRequest::Name n;
  n.name = std::string(value.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string mode(value.substr(colon + 1));
    using M = ContainerRequest::NameMode;
    if (mode == "auto") {
      n.mode = M::automatic;
    } else if (mode == "create") {
      n.mode = M::create;
    } else if (mode == "exec") {
      n.mode = M::exec;
    } else if (mode == "no_exec") {
      n.mode = M::no_exec;
    } else {
      throw bad("container-name", "unknown mode '" + mode + "'",
                "write NAME, or NAME:auto, NAME:create, NAME:exec or NAME:no_exec");
    }
  }
  bool ok = !n.name.empty() && n.name.size() <= 128 && n.name[0] != '.';
  for (char c : n.name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    throw bad("container-name", "invalid name '" + n.name + "'",
              "use letters, digits, '.', '_' and '-' (at most 128, not starting with '.')");
  }
  return n;
}

void apply_option(ContainerRequest& r, std::string_view option, const char* optarg,
                  const EnvLookup& env) {
  if (option == "container-image") {
    r.image = required(option, optarg);
    try {
      parse_image_source(r.image);
    } catch (const Error& e) {
      throw bad(option, e.what(), e.hint());
    }
  } else if (option == "container-mounts") {
    auto more = parse_container_mounts(required(option, optarg), env);
    r.mounts.insert(r.mounts.end(), more.begin(), more.end());
  } else if (option == "container-workdir") {
    r.workdir = normalize_container_path(required(option, optarg), "--container-workdir");
  } else if (option == "container-name") {
    r.name = parse_container_name(required(option, optarg));
  } else if (option == "container-save") {
    r.save = required(option, optarg);
    if (r.save.ends_with("/")) {
      throw bad(option, "'" + r.save + "' ends with '/'", "name the .sqsh file to write");
    }
  } else if (option == "container-mount-home" || option == "no-container-mount-home") {
    r.mount_home = !option.starts_with("no-");
  } else if (option == "container-remap-root" || option == "no-container-remap-root") {
    r.remap_root = !option.starts_with("no-");
  } else if (option == "container-entrypoint" || option == "no-container-entrypoint") {
    r.entrypoint = !option.starts_with("no-");
  } else if (option == "container-entrypoint-log") {
    r.entrypoint_log = true;
  } else if (option == "container-writable" || option == "container-readonly") {
    r.writable = option == "container-writable";
  } else if (option == "container-env") {
    for (const auto& name : split(required(option, optarg), ',')) {
      if (name.empty()) continue;
      if (!is_valid_env_name(name)) throw bad(option, "invalid variable name '" + name + "'");
      r.env_names.push_back(name);
    }
  } else if (option == "container-unshare") {
    for (const auto& ns : split(required(option, optarg), ',')) {
      if (ns == "net") {
        r.unshare_net = true;
      } else if (ns == "ipc") {
        r.unshare_ipc = true;
      } else if (ns == "uts") {
        r.unshare_uts = true;
      } else {
        throw bad(option, "unknown namespace '" + ns + "'", "use net, ipc and/or uts");
      }
    }
  } else {
    throw bad(option, "unknown option");
  }
}

void apply_environment(ContainerRequest& r, const std::set<std::string>& given,
                       const EnvLookup& env) {
  for (const auto& o : container_options()) {
    std::string name = o.name;
    if (name.starts_with("no-") || given.contains(name) || given.contains("no-" + name)) continue;
    if (name == "container-readonly" && given.contains("container-writable")) continue;
    if (name == "container-writable" && given.contains("container-readonly")) continue;
    std::optional<std::string> value;
    for (const char* prefix : {"PYXIS_CONTAINER_", "DEEPOPS_CONTAINER_"}) {  // DEEPOPS_ wins
      if (auto v = env(prefix + env_name_of(name)); v && !v->empty()) value = v;
    }
    if (!value) continue;
    if (o.arginfo) {
      apply_option(r, name, value->c_str(), env);
    } else if (option_bool(name, *value)) {
      apply_option(r, name, nullptr, env);
    } else if (name != "container-entrypoint-log" && name != "container-writable" &&
               name != "container-readonly") {
      apply_option(r, "no-" + name, nullptr, env);
    }
  }
}

void validate_on_submit(const ContainerRequest& r, const fs::path& cwd) {
  if (!r.image.empty()) {
    auto source = parse_image_source(r.image);
    if (auto* file = std::get_if<SquashfsFile>(&source)) {
      fs::path p = file->path.is_absolute() ? file->path : cwd / file->path;
      if (access(p.c_str(), R_OK) != 0) {
        throw bad("container-image", "cannot read the image file " + p.string(),
                  "check the path; it must be readable on the compute nodes too");
      }
    } else {
      // Pyxis's trap: "img.sqsh" without "./" is taken for a Docker Hub name.
      struct stat st {};
      bool local_file = stat((cwd / r.image).c_str(), &st) == 0 && S_ISREG(st.st_mode);
      if (local_file || r.image.ends_with(".sqsh")) {
        throw bad("container-image",
                  "'" + r.image + "' looks like a file, but is read as a registry image name",
                  "write ./" + r.image + " (or its absolute path) for the file");
      }
    }
  }
  for (const auto& m : r.mounts) {
    if (!m.bind) continue;
    if (access(m.source.c_str(), F_OK) != 0) {
      throw Error(Errc::not_found, m.origin + ": the source " + m.source + " does not exist",
                  "create it, or fix the path; it must exist on the compute nodes too");
    }
  }
}

PlugstackConfig parse_plugstack_args(const std::vector<std::string>& args) {
  PlugstackConfig c;
  for (const auto& arg : args) {
    auto eq = arg.find('=');
    std::string key = arg.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    const std::string where = "plugstack.conf: " + key;
    if (key == "runtime_path") {
      if (value.empty() || value[0] != '/') {
        throw Error(Errc::invalid_argument, where + " must be an absolute path");
      }
      c.runtime_path = value;
    } else if (key == "sysconf_dir") {
      if (value.empty() || value[0] != '/') {
        throw Error(Errc::invalid_argument, where + " must be an absolute path");
      }
      c.sysconf_dir = value;
    } else if (key == "execute_entrypoint") {
      c.execute_entrypoint = parse_bool(value, where);
    } else if (key == "container_scope") {
      if (value != "job" && value != "global") {
        throw Error(Errc::invalid_argument, where + ": '" + value + "' is not job or global");
      }
      c.job_scope = value == "job";
    } else if (key == "sbatch_support") {
      c.sbatch_support = parse_bool(value, where);
    } else if (key == "importer" || key == "use_enroot_load" || key == "use_squashfuse") {
      c.notes.push_back("plugstack.conf: " + key +
                        " is a Pyxis setting with no meaning here (images always start from a "
                        "cached squashfs); ignored");
    } else {
      throw Error(Errc::invalid_argument, "plugstack.conf: unknown key '" + key + "'",
                  "the keys are runtime_path, sysconf_dir, execute_entrypoint, "
                  "container_scope and sbatch_support");
    }
  }
  return c;
}

}  // namespace deepops::spank
