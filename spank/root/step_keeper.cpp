#include "step_keeper.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <thread>

#include "spawn_keeper.hpp"
#include "util/error.hpp"

namespace deepops::spank {
namespace {

using namespace std::chrono_literals;

// The request is the plugin's own few kilobytes (the job's environment the
// most of it); a keeper that does not take it in this long is stuck.
constexpr auto kRequestDeadline = 30s;
// A save writes the whole image again: as long as a start may take.
constexpr auto kSaveDeadline = 3600s;
// What a keeper asked to stop gets before SIGKILL.
constexpr auto kStopGrace = 10s;

// A signal to the keeper forked: through its pidfd where there is one (its
// pid may have been reaped and reused), else by pid.
void signal_keeper(pid_t pid, const UniqueFd* pidfd, int sig) {
  if (pidfd && *pidfd) {
    syscall(SYS_pidfd_send_signal, pidfd->get(), sig, nullptr, 0);
  } else {
    kill(pid, sig);
  }
}

// waitid's idtype for a pidfd (Linux 5.4), whether or not the C library
// names it.
constexpr auto kPidfdIdType = static_cast<idtype_t>(3);

// Whether the keeper exited (and is now reaped) within `limit`. Through its
// pidfd where there is one: waitpid on a pid that something else reaped
// might reap another child of slurmstepd's that reuses it.
bool wait_bounded(pid_t pid, const UniqueFd* pidfd, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    siginfo_t info{};
    const bool by_pidfd = pidfd && *pidfd;
    const int rc =
        by_pidfd ? waitid(kPidfdIdType, static_cast<id_t>(pidfd->get()), &info, WEXITED | WNOHANG)
                 : waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG);
    if ((rc == 0 && info.si_pid != 0) || (rc < 0 && errno == ECHILD)) return true;
    if (rc < 0 && errno == EINVAL && by_pidfd) pidfd = nullptr;  // a kernel before 5.4
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

// Whether the keeper has exited, without reaping it: as long as it is not
// reaped, its pid is no one else's.
bool exited_unreaped(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
    return errno == ECHILD;
  }
  return info.si_pid == pid;
}

// SIGTERM to the keeper (the child forked, nothing else: the keeper stops its
// import and hooks itself), SIGKILL to it and its process group after the
// grace, then reaped. Its pipe is
// drained meanwhile, within bounds: a keeper blocked on a full pipe could
// not exit.
void stop_keeper(pid_t keeper, const UniqueFd* pidfd, int report_fd) {
  signal_keeper(keeper, pidfd, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  while (!exited_unreaped(keeper) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{report_fd, POLLIN, 0};
    char chunk[65536];
    if (report_fd < 0 || (poll(&p, 1, 50) > 0 && read(report_fd, chunk, sizeof(chunk)) <= 0)) {
      std::this_thread::sleep_for(50ms);  // closed: only wait
    }
  }
  signal_keeper(keeper, pidfd, SIGKILL);
  // What the keeper started (an import, a hook that ignores SIGTERM) is in
  // its process group, whose id cannot be reused while the keeper is
  // unreaped.
  killpg(keeper, SIGKILL);
  while (waitpid(keeper, nullptr, 0) < 0 && errno == EINTR) {
  }
}

std::string what_starts(const ContainerRequest& request) {
  return !request.image.empty() ? request.image
         : request.name         ? "container '" + request.name->name + "'"
                                : "the container";
}

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// Why a read ended without a report, as the user is told.
std::string read_failure(const ReadOutcome& out, const ContainerRequest& request,
                         const ReadLimits& limits) {
  switch (out.how) {
    case ReadOutcome::Ended::cancelled:
      return "the job was cancelled while " + what_starts(request) +
             " was starting (its image importing, or hooks running): stopped";
    case ReadOutcome::Ended::deadline:
      return Error(Errc::busy,
                   what_starts(request) + " did not start within " +
                       std::to_string(
                           std::chrono::duration_cast<std::chrono::seconds>(limits.deadline)
                               .count()) +
                       " s: stopped",
                   "an admin can allow longer starts with start_timeout in plugstack.conf")
          .describe();
    case ReadOutcome::Ended::too_large:
      return "the container's keeper sent a report larger than " + mib(limits.max_line) +
             ": stopped";
    default:
      return "the container's keeper died before it was ready";
  }
}

// A keeper run for one action (save, clean-up): the request in, one answer
// out, within `deadline`.
KeeperLog run_keeper(const std::string& program, const char* action, const UserIdentity& who,
                     const std::string& request, std::chrono::milliseconds deadline) {
  KeeperProcess k = spawn_keeper(program, action, who, {});
  if (!write_document(k.request.get(), request, kRequestDeadline)) {
    stop_keeper(k.pid, &k.pidfd, k.report.get());
    return KeeperLog{false, "deepops-keeper did not take its request", {}};
  }
  k.request.reset();
  const ReadLimits limits{1u << 20, deadline};
  ReadOutcome out = read_keeper_pipe(k.report.get(), {}, {}, 0ms, limits);
  if (out.how != ReadOutcome::Ended::report) {
    stop_keeper(k.pid, &k.pidfd, k.report.get());
    return KeeperLog{false,
                     out.how == ReadOutcome::Ended::deadline
                         ? "deepops-keeper " + std::string(action) + " took longer than " +
                               std::to_string(deadline.count() / 1000) + " s: stopped"
                         : "deepops-keeper " + std::string(action) + " died without an answer",
                     {}};
  }
  if (!wait_bounded(k.pid, &k.pidfd, kStopGrace)) stop_keeper(k.pid, &k.pidfd, -1);
  return KeeperLog::from_json(out.report);
}

}  // namespace

KeeperReport start_step_container(const std::string& keeper, const ContainerRequest& request,
                                  const PlugstackConfig& config, const StepInfo& step,
                                  const ProgressSink& progress, const StartWatch& watch,
                                  const ReadLimits& read_limits) {
  KeeperReport failed;
  // The keeper while it is not reaped: stopped and reaped once, whatever
  // returns or throws (an allocation), never signalled after.
  std::optional<KeeperProcess> k;
  auto stop = [&k] {
    if (k) stop_keeper(k->pid, &k->pidfd, k->report.get());
    k.reset();
  };
  try {
    const std::string request_text = to_json(StartRequest{request, config, step});
    k = spawn_keeper(keeper, kStartAction, step.who, config.runtime_path);
    if (!write_document(k->request.get(), request_text, kRequestDeadline)) {
      stop();
      failed.error = "the container's keeper did not take its request";
      return failed;
    }
    k->request.reset();
    ReadLimits limits = read_limits;
    if (limits.deadline.count() == 0) limits.deadline = config.start_timeout;
    ReadOutcome out =
        read_keeper_pipe(k->report.get(), progress, watch.cancelled, watch.every, limits);
    if (out.how != ReadOutcome::Ended::report) {
      stop();
      failed.error = read_failure(out, request, limits);
      return failed;
    }
    KeeperReport rep = KeeperReport::from_json(out.report);
    // The step's end signals the keeper as root: that is the child forked,
    // whatever pid the report (written as the user) names.
    if (rep.ok && !rep.attached && rep.keeper != k->pid) {
      stop();
      failed.error = "the container's keeper reported another process as itself";
      return failed;
    }
    if (!rep.ok || rep.attached) {  // it is done: it failed, or only looked
      if (wait_bounded(k->pid, &k->pidfd, kStopGrace)) k.reset();
      stop();
      if (!rep.ok && (rep.error.empty() || rep.error == "the container's keeper sent no report")) {
        rep.error = "the container's keeper died before it was ready";
      }
      return rep;
    }
    rep.keeper_pidfd = std::make_shared<UniqueFd>(std::move(k->pidfd));
    k.reset();  // running: the step's end stops it (stop_step_container)
    return rep;
  } catch (const std::exception& e) {
    stop();
    failed.error = describe_exception(e);
  }
  return failed;
}

std::vector<std::string> stop_step_container(const std::string& keeper, const KeeperReport& report,
                                             const StepInfo& step) {
  std::vector<std::string> log;
  if (!report.ok || report.attached) return log;
  const UniqueFd* pidfd = report.keeper_pidfd.get();
  signal_keeper(report.keeper, pidfd, SIGTERM);
  if (!wait_bounded(report.keeper, pidfd, kStopGrace)) {
    log.push_back("the container's keeper ignored SIGTERM for 10 s; killed");
    signal_keeper(report.keeper, pidfd, SIGKILL);
    wait_bounded(report.keeper, pidfd, 5s);
  }
  if (report.save_to.empty()) return log;
  try {
    KeeperLog saved = run_keeper(keeper, kSaveAction, step.who, report.to_json(), kSaveDeadline);
    if (saved.ok) {
      log.push_back("saved the container to " + report.save_to.string());
    } else {
      log.push_back("cannot save the container to " + report.save_to.string() + ": " + saved.error);
    }
  } catch (const std::exception& e) {
    log.push_back("cannot save the container to " + report.save_to.string() + ": " +
                  describe_exception(e));
  }
  return log;
}

std::vector<std::string> release_step_image(const std::string& keeper, const KeeperReport& report,
                                            const ContainerRequest& request,
                                            const PlugstackConfig& config, const StepInfo& step) {
  std::vector<std::string> log;
  if (config.importer.empty() || request.image.empty() || report.attached) return log;
  try {
    KeeperLog released = run_keeper(keeper, kReleaseAction, step.who,
                                    to_json(StartRequest{request, config, step}), 600s);
    if (!released.ok) log.push_back("importer release: " + released.error);
    log.insert(log.end(), released.lines.begin(), released.lines.end());
  } catch (const std::exception& e) {
    log.push_back("importer release: " + describe_exception(e));
  }
  return log;
}

std::vector<std::string> remove_job_containers(const std::string& keeper, const UserIdentity& who,
                                               const std::string& job_id, const std::string& node,
                                               const PlugstackConfig& config) {
  std::vector<std::string> log;
  try {
    KeeperLog removed = run_keeper(keeper, kRemoveJobAction, who,
                                   to_json(RemoveJobRequest{job_id, node, config}), 600s);
    if (!removed.ok) {
      log.push_back("cannot remove the job's containers: " + removed.error);
    } else {
      log.insert(log.end(), removed.lines.begin(), removed.lines.end());
    }
  } catch (const std::exception& e) {
    log.push_back("cannot remove the job's containers: " + describe_exception(e));
  }
  return log;
}

}  // namespace deepops::spank
