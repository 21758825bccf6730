// deepops-keeper: the Slurm plugin's worker, exec'd by spank_deepops.so as
// the job's user (spank/root/spawn_keeper.cpp), never by hand. It reads its
// request (JSON) on fd 3 and answers on fd 4:
//   start                  a step's container on this node (step_start.cpp)
//   save                   --container-save, once the step's keeper stopped
//   remove-job-containers  the job epilog's clean-up (container_scope=job)
//   release                `importer release`, once the step's container is done
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "config/settings.hpp"
#include "container/container.hpp"
#include "container/container_store.hpp"
#include "importer_plugin.hpp"
#include "keeper_io.hpp"
#include "keeper_protocol.hpp"
#include "registry/manifest.hpp"
#include "step_start.hpp"
#include "usecases/containers.hpp"

namespace {

using namespace deepops;
using namespace deepops::spank;
namespace fs = std::filesystem;

// The request is the plugin's: the job's environment is most of it.
constexpr size_t kMaxRequest = 64u << 20;

constexpr const char* kUsage =
    "usage: deepops-keeper start|save|remove-job-containers|release\n"
    "\n"
    "The worker of the Slurm plugin spank_deepops.so, which runs it as the job's\n"
    "user with its request (JSON) on descriptor 3 and reads the answer on\n"
    "descriptor 4. It is not meant to be run by hand: see man deepops-ctr for the\n"
    "command line, and man 8 spank_deepops for the plugin.\n";

KeeperLog save(const std::string& text) {
  const KeeperReport report = KeeperReport::from_json(text);
  if (!report.ok) throw Error(Errc::invalid_argument, "the save request is malformed");
  export_image(
      ExportRequest{report.squashfs, ImageConfig::from_json(report.image), report.container,
                    report.layer_dir, report.runtime_dir, parse_overlay_kind(report.overlay)},
      report.save_to);
  if (report.layer_is_temporary) remove_tree(report.layer_dir);
  return KeeperLog{true, "", {}};
}

KeeperLog release(const std::string& text) {
  const StartRequest request = start_request_from_json(text);
  return importer_release(request, load_admin_settings(request.step, request.config));
}

KeeperLog remove_job_containers(const std::string& text) {
  const RemoveJobRequest request = remove_job_request_from_json(text);
  StepInfo step;
  step.uid = getuid();
  step.gid = getgid();
  step.job_id = request.job_id;
  step.node = request.node;
  const Settings settings = load_admin_settings(step, request.config);
  ContainerStore store(settings.data_path);
  std::string names;
  for (const auto& c : store.list()) {
    if (!c.name.starts_with(job_scope_prefix(request.job_id))) continue;
    store.remove(c.name);
    names += " " + c.name;
  }
  KeeperLog out{true, "", {}};
  if (!names.empty()) out.lines.push_back("removed the job's containers:" + names);
  return out;
}

// The descriptors the plugin gave: neither may reach what the keeper runs.
bool take_descriptors() {
  for (int fd : {kRequestFd, kReportFd}) {
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string action = argc == 2 ? argv[1] : "";
  if (action == "--help" || action == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (action != kStartAction && action != kSaveAction && action != kRemoveJobAction &&
      action != kReleaseAction) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (!take_descriptors()) {
    std::fputs("deepops-keeper: descriptors 3 and 4 are not open: it is run by the Slurm plugin\n",
               stderr);
    return 2;
  }
  try {
    const std::string request = read_bounded(kRequestFd, kMaxRequest, "the request");
    close(kRequestFd);
    if (action == kStartAction) run_start(kReportFd, start_request_from_json(request));
    KeeperLog log = action == kSaveAction      ? save(request)
                    : action == kReleaseAction ? release(request)
                                               : remove_job_containers(request);
    write_line(kReportFd, log.to_json());
    return 0;
  } catch (const Error& e) {
    write_line(kReportFd, dump_text(error_json(e)));
  } catch (const std::exception& e) {
    write_line(kReportFd, dump_text(error_json(Error(Errc::internal, e.what()))));
  }
  return 1;
}
