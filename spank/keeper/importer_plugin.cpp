#include "importer_plugin.hpp"

#include <unistd.h>

#include "usecases/image_source.hpp"
#include "util/child_process.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace deepops::spank {
namespace fs = std::filesystem;
namespace {

// The Pyxis release whose importer protocol this follows.
constexpr const char* kPyxisVersion = "0.24.0";
constexpr size_t kMaxPathOutput = 64 * 1024;
constexpr size_t kShownStderr = 4000;

std::string last_line(const std::string& text) {
  const std::vector<std::string> lines = split_nonempty(text, '\n');
  return lines.empty() ? std::string() : trim(lines.back());
}

// The end of the importer's stderr, for the error srun shows.
std::string shown_stderr(const std::string& err) {
  std::string tail = err.size() > kShownStderr ? err.substr(err.size() - kShownStderr) : err;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  return tail.empty() ? "(no output on stderr)" : tail;
}

}  // namespace

bool uses_importer(const PlugstackConfig& config, const std::string& image) {
  if (config.importer.empty() || image.empty()) return false;
  try {
    const ImageSource source = parse_image_source(image);
    return std::holds_alternative<RegistryImage>(source) ||
           std::holds_alternative<DaemonImage>(source);
  } catch (const Error&) {
    return false;  // the start reports it
  }
}

std::string importer_uri(const std::string& image) {
  for (const char* scheme : {"docker://", "dockerd://", "podman://"}) {
    if (image.starts_with(scheme)) return image;
  }
  return "docker://" + image;
}

std::vector<std::string> importer_environment(const PlugstackConfig& config, const StepInfo& step,
                                              const Settings& settings) {
  EnvMap env = step.job_env;
  env["PYXIS_RUNTIME_PATH"] =
      (config.runtime_path.empty() ? settings.runtime_path : config.runtime_path).string();
  env["PYXIS_VERSION"] = kPyxisVersion;
  env["SLURM_JOB_UID"] = std::to_string(step.uid);
  env["SLURM_JOB_GID"] = std::to_string(step.gid);
  env["SLURM_JOB_ID"] = step.job_id;
  env["SLURM_STEP_ID"] = step.step_id;
  env["SLURMD_NODENAME"] = step.node;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

fs::path importer_get(const PlugstackConfig& config, const StepInfo& step, const Settings& settings,
                      const std::string& image) {
  const std::string program = config.importer.string();
  const std::string uri = importer_uri(image);
  CaptureOptions options;
  options.max_output = kMaxPathOutput;
  options.capture_stderr = true;
  options.env = importer_environment(config, step, settings);
  const CapturedRun run = run_captured({program, "get", uri}, options);
  const std::string what = "the importer " + program + " (get " + uri + ")";
  if (run.exit_status != 0) {
    throw Error(Errc::not_found,
                what + " failed with exit status " + std::to_string(run.exit_status) + ":\n" +
                    shown_stderr(run.err),
                "the importer is the site's (plugstack.conf importer=); its message is above");
  }
  const fs::path path = last_line(run.out);
  if (path.empty() || !path.is_absolute()) {
    throw Error(Errc::invalid_argument,
                what + " printed no absolute squashfs path on stdout (got '" + last_line(run.out) +
                    "'); its stderr:\n" + shown_stderr(run.err),
                "an importer prints the path of the squashfs as its last line");
  }
  if (access(path.c_str(), R_OK) != 0) {
    throw sys_error(what + " printed " + path.string() + ", which cannot be read", errno,
                    "the importer must leave the file there until `release`");
  }
  return path;
}

KeeperLog importer_release(const StartRequest& request, const Settings& settings) {
  KeeperLog log;
  log.ok = true;
  if (!uses_importer(request.config, request.request.image)) return log;
  CaptureOptions options;
  options.max_output = kMaxPathOutput;
  options.capture_stderr = true;
  options.env = importer_environment(request.config, request.step, settings);
  const std::string program = request.config.importer.string();
  const CapturedRun run = run_captured({program, "release"}, options);
  if (run.exit_status != 0) {
    log.lines.push_back("the importer " + program + " (release) failed with exit status " +
                        std::to_string(run.exit_status) + ": " + shown_stderr(run.err));
  }
  return log;
}

}  // namespace deepops::spank
