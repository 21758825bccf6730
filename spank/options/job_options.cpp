#include "job_options.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "config/settings.hpp"
#include "usecases/image_source.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops::spank {
namespace fs = std::filesystem;
namespace {

Error bad(std::string_view option, const std::string& message, std::string hint = {}) {
  return Error(Errc::invalid_argument, "--" + std::string(option) + ": " + message,
               std::move(hint));
}

// A boolean variable, read as Pyxis reads it (parse_bool in its config.c):
// these eight words exactly, anything else (other case included) ignored.
std::optional<bool> variable_bool(const std::string& value) {
  if (value == "1" || value == "true" || value == "yes" || value == "y") return true;
  if (value == "0" || value == "false" || value == "no" || value == "n") return false;
  return std::nullopt;
}

// A --X / --no-X pair (or --container-writable / --container-readonly): the
// same one again is fine (Slurm may hand an option over twice), the other
// one is refused, as Pyxis does.
void set_flag(std::optional<bool>& field, bool value, std::string_view option,
              const std::string& yes, const std::string& no) {
  if (field && *field != value) {
    throw bad(option, "both --" + yes + " and --" + no + " were specified", "give only one");
  }
  field = value;
}

// --container-workdir as Pyxis applies it: chdir() once the task is in the
// container's mount namespace, whose root is then its working directory, so
// a relative path is taken from "/" and ".." stops there ("../" is "/").
std::string container_workdir(const std::string& value) {
  std::vector<std::string> parts;
  for (const auto& part : split(value, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const auto& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
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
       "bind mount[s] inside the container; SRC may be relative (./data); FLAGS joined by "
       "'+', e.g. ro+rprivate"},
      {"container-workdir", "PATH", "working directory inside the container (relative: from /)"},
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
    if (item.empty()) {  // as Pyxis: "a,,b" and a trailing ',' are format errors
      throw Error(Errc::invalid_argument,
                  "--container-mounts: invalid format: empty entry in '" + std::string(value) + "'",
                  "separate SRC:DST[:FLAGS] entries with single commas, none at the end");
    }
    const std::string origin = "--container-mounts entry '" + item + "'";
    auto parts = split(substitute_env(item, env), ':');
    for (auto& p : parts) p = decode_fstab_escapes(p);
    if (parts.size() > 3 || parts[0].empty() || (parts.size() >= 2 && parts[1].empty())) {
      throw Error(Errc::invalid_argument, origin + ": expected SRC[:DST[:FLAGS]]",
                  "e.g. /data:/data:ro, ./data:/data, tmpfs:/scratch, umount:/opt/unwanted");
    }
    // Pyxis's sources: a path starting with '/' or '.' (relative to the
    // job's working directory), "tmpfs" or "umount".
    const std::string& source = parts[0];
    if (source[0] != '/' && source[0] != '.' && source != "tmpfs" && source != "umount") {
      throw Error(Errc::invalid_argument,
                  origin + ": the source '" + source +
                      "' must be an absolute path, a relative path starting with '.', tmpfs "
                      "or umount",
                  "write ./" + source + " for " + source + " in the current directory");
    }
    std::string options;
    if (parts.size() == 3) {
      for (const auto& f : split(parts[2], '+')) {
        // Entries are always rbind (as Pyxis's); "bind" keeps them recursive, as in Enroot.
        if (f == "bind" || f == "rbind") continue;
        options += (options.empty() ? "" : ",") + f;
      }
    }
    auto with = [&](const std::string& more) {
      return options.empty() ? more : more + "," + options;
    };
    // A target starting with '.' is relative to the container's root, as in Enroot.
    std::string target = parts.size() >= 2 ? parts[1] : parts[0];
    if (target.starts_with('.')) target = "/" + target;
    if (parts[0] == "tmpfs") {
      out.push_back(parse_mount_fields({"tmpfs", target, "tmpfs", with("x-create=dir")}, origin));
    } else if (parts[0] == "umount") {
      out.push_back(parse_mount_fields({"none", target, "none", with("x-detach")}, origin));
    } else {
      out.push_back(parse_mount_fields({parts[0], target, "none", with("rbind,x-create=auto")},
                                       origin, true));
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
    ImageSource source;
    try {
      source = parse_image_source(r.image);
    } catch (const Error& e) {
      throw bad(option, e.what(), e.hint());
    }
    // A step runs registry images and squashfs files; an offline copy is
    // imported first. The prefix may also be a Docker Hub name's: docker://
    // says which.
    if (std::holds_alternative<OfflineImage>(source)) {
      throw bad(option, "'" + r.image + "' names an offline image copy, which a step cannot read",
                "import it first (deepops-ctr import -o IMAGE.sqsh " + r.image +
                    ") and give the .sqsh file; for a registry image of that name write docker://" +
                    r.image);
    }
  } else if (option == "container-mounts") {
    auto more = parse_container_mounts(required(option, optarg), env);
    r.mounts.insert(r.mounts.end(), more.begin(), more.end());
  } else if (option == "container-workdir") {
    r.workdir = container_workdir(required(option, optarg));
  } else if (option == "container-name") {
    r.name = parse_container_name(required(option, optarg));
  } else if (option == "container-save") {
    r.save = required(option, optarg);
    if (r.save.ends_with("/")) {
      throw bad(option, "'" + r.save + "' ends with '/'", "name the .sqsh file to write");
    }
  } else if (option == "container-mount-home" || option == "no-container-mount-home") {
    set_flag(r.mount_home, !option.starts_with("no-"), option, "container-mount-home",
             "no-container-mount-home");
  } else if (option == "container-remap-root" || option == "no-container-remap-root") {
    set_flag(r.remap_root, !option.starts_with("no-"), option, "container-remap-root",
             "no-container-remap-root");
  } else if (option == "container-entrypoint" || option == "no-container-entrypoint") {
    set_flag(r.entrypoint, !option.starts_with("no-"), option, "container-entrypoint",
             "no-container-entrypoint");
  } else if (option == "container-entrypoint-log") {
    r.entrypoint_log = true;
  } else if (option == "container-writable" || option == "container-readonly") {
    set_flag(r.writable, option == "container-writable", option, "container-writable",
             "container-readonly");
  } else if (option == "container-env") {
    const std::string value = required(option, optarg);
    for (const auto& name : split(value, ',')) {
      if (name.empty()) {  // as Pyxis: "FOO," and "A,,B" are refused
        throw bad(option, "invalid format: empty name in '" + value + "'",
                  "separate the names with single commas, none at the end");
      }
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
  // PYXIS_CONTAINER_<NAME>, or DEEPOPS_CONTAINER_<NAME> when both are set.
  auto variable = [&](const std::string& option) {
    std::optional<std::string> value;
    for (const char* prefix : {"PYXIS_CONTAINER_", "DEEPOPS_CONTAINER_"}) {
      if (auto v = env(prefix + env_name_of(option)); v && !v->empty()) value = v;
    }
    return value;
  };
  auto boolean = [&](const std::string& option) -> std::optional<bool> {
    auto value = variable(option);
    return value ? variable_bool(*value) : std::nullopt;
  };
  for (const auto& o : container_options()) {
    std::string name = o.name;
    if (!o.arginfo || given.contains(name)) continue;
    if (auto value = variable(name)) apply_option(r, name, value->c_str(), env);
  }
  // Booleans as Pyxis: only when neither form is on the command line; a
  // value other than 1/true/yes/y or 0/false/no/n is ignored.
  for (auto* field : {&r.mount_home, &r.remap_root, &r.entrypoint}) {
    const std::string name = field == &r.mount_home   ? "container-mount-home"
                             : field == &r.remap_root ? "container-remap-root"
                                                      : "container-entrypoint";
    if (field->has_value() || given.contains(name) || given.contains("no-" + name)) continue;
    if (auto b = boolean(name)) *field = *b;
  }
  if (!given.contains("container-entrypoint-log")) {
    if (auto b = boolean("container-entrypoint-log")) r.entrypoint_log = *b;
  }
  // WRITABLE=0 is read-only and READONLY=0 writable; WRITABLE wins when both are valid.
  if (!r.writable && !given.contains("container-writable") &&
      !given.contains("container-readonly")) {
    if (auto b = boolean("container-writable")) {
      r.writable = *b;
    } else if (auto ro = boolean("container-readonly")) {
      r.writable = !*ro;
    }
  }
  // Relative mount sources: from the job's working directory, which Slurm
  // gives the node as PWD (srun's, which srun itself sees the same).
  for (const char* dir : {"PWD", "SLURM_SUBMIT_DIR"}) {
    auto base = env(dir);
    if (!base || base->empty() || (*base)[0] != '/') continue;
    resolve_mount_sources(r, *base);
    break;
  }
}

void resolve_mount_sources(ContainerRequest& r, const fs::path& base) {
  for (auto& m : r.mounts) resolve_relative_source(m, base.string());
}

void validate_on_submit(ContainerRequest& r, const fs::path& cwd) {
  resolve_mount_sources(r, cwd);
  if (!r.image.empty()) {
    auto source = parse_image_source(r.image);
    if (auto* file = std::get_if<SquashfsFile>(&source)) {
      fs::path p = file->path.is_absolute() ? file->path : cwd / file->path;
      if (access(p.c_str(), R_OK) != 0) {
        throw bad("container-image", "cannot read the image file " + p.string(),
                  "check the path; it must be readable on the compute nodes too");
      }
    } else if (std::holds_alternative<RegistryImage>(source)) {
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

namespace {

// Seconds, 0 for none; at most a year (a typo of a few more digits is not a
// wish to wait forever).
std::chrono::seconds parse_start_timeout(const std::string& value, const std::string& where) {
  constexpr long long kMax = 366LL * 24 * 3600;
  if (value.empty() || value.size() > 12 ||
      value.find_first_not_of("0123456789") != std::string::npos || std::stoll(value) > kMax) {
    throw Error(
        Errc::invalid_argument,
        where + ": '" + value + "' is not a number of seconds (0 to " + std::to_string(kMax) + ")",
        "0 waits as long as the job may run");
  }
  return std::chrono::seconds(std::stoll(value));
}

}  // namespace

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
    } else if (key == "start_timeout") {
      c.start_timeout = parse_start_timeout(value, where);
    } else if (key == "importer") {
      if (value.empty() || value[0] != '/') {
        throw Error(Errc::invalid_argument, where + " must be an absolute path",
                    "importer=/path/to/importer, an executable answering `get URI` and `release`");
      }
      c.importer = value;
    } else if (key == "use_enroot_load" || key == "use_squashfuse") {
      c.notes.push_back("plugstack.conf: " + key +
                        " is a Pyxis setting with no meaning here (images always start from a "
                        "cached squashfs); ignored");
    } else {
      throw Error(Errc::invalid_argument, "plugstack.conf: unknown key '" + key + "'",
                  "the keys are runtime_path, sysconf_dir, execute_entrypoint, "
                  "container_scope, sbatch_support, start_timeout and importer");
    }
  }
  return c;
}

}  // namespace deepops::spank
