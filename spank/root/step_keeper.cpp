#include "step_keeper.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "deepops/error.hpp"
#include "spawn_keeper.hpp"

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

bool wait_bounded(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const pid_t got = waitpid(pid, nullptr, WNOHANG);
    if (got == pid || (got < 0 && errno == ECHILD)) return true;
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
// import and hooks itself), SIGKILL after the grace, then reaped. Its pipe is
// drained meanwhile, within bounds: a keeper blocked on a full pipe could
// not exit.
void stop_keeper(pid_t keeper, int report_fd) {
  kill(keeper, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  while (!exited_unreaped(keeper) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{report_fd, POLLIN, 0};
    char chunk[65536];
    if (report_fd < 0 || (poll(&p, 1, 50) > 0 && read(report_fd, chunk, sizeof(chunk)) <= 0)) {
      std::this_thread::sleep_for(50ms);  // closed: only wait
    }
  }
  kill(keeper, SIGKILL);
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
    stop_keeper(k.pid, k.report.get());
    return KeeperLog{false, "deepops-keeper did not take its request", {}};
  }
  k.request.reset();
  const ReadLimits limits{1u << 20, deadline};
  ReadOutcome out = read_keeper_pipe(k.report.get(), {}, {}, 0ms, limits);
  if (out.how != ReadOutcome::Ended::report) {
    stop_keeper(k.pid, k.report.get());
    return KeeperLog{false,
                     out.how == ReadOutcome::Ended::deadline
                         ? "deepops-keeper " + std::string(action) + " took longer than " +
                               std::to_string(deadline.count() / 1000) + " s: stopped"
                         : "deepops-keeper " + std::string(action) + " died without an answer",
                     {}};
  }
  if (!wait_bounded(k.pid, kStopGrace)) stop_keeper(k.pid, -1);
  return KeeperLog::from_json(out.report);
}

}  // namespace

KeeperReport start_step_container(const std::string& keeper, const ContainerRequest& request,
                                  const PlugstackConfig& config, const StepInfo& step,
                                  const ProgressSink& progress, const StartWatch& watch,
                                  const ReadLimits& read_limits) {
  KeeperReport failed;
  try {
    KeeperProcess k = spawn_keeper(keeper, kStartAction, step.who, config.runtime_path);
    if (!write_document(k.request.get(), to_json(StartRequest{request, config, step}),
                        kRequestDeadline)) {
      stop_keeper(k.pid, k.report.get());
      failed.error = "the container's keeper did not take its request";
      return failed;
    }
    k.request.reset();
    ReadLimits limits = read_limits;
    if (limits.deadline.count() == 0) limits.deadline = config.start_timeout;
    ReadOutcome out =
        read_keeper_pipe(k.report.get(), progress, watch.cancelled, watch.every, limits);
    if (out.how != ReadOutcome::Ended::report) {
      stop_keeper(k.pid, k.report.get());
      failed.error = read_failure(out, request, limits);
      return failed;
    }
    KeeperReport rep = KeeperReport::from_json(out.report);
    // The step's end signals the keeper as root: that is the child forked,
    // whatever pid the report (written as the user) names.
    if (rep.ok && !rep.attached && rep.keeper != k.pid) {
      stop_keeper(k.pid, k.report.get());
      failed.error = "the container's keeper reported another process as itself";
      return failed;
    }
    if (!rep.ok || rep.attached) {  // it is done: it failed, or only looked
      if (!wait_bounded(k.pid, kStopGrace)) stop_keeper(k.pid, k.report.get());
      if (rep.error.empty() || rep.error == "the container's keeper sent no report") {
        if (!rep.ok) rep.error = "the container's keeper died before it was ready";
      }
    }
    return rep;
  } catch (const Error& e) {
    failed.error = e.describe();
  }
  return failed;
}

std::vector<std::string> stop_step_container(const std::string& keeper, const KeeperReport& report,
                                             const StepInfo& step) {
  std::vector<std::string> log;
  if (!report.ok || report.attached) return log;
  kill(report.keeper, SIGTERM);
  if (!wait_bounded(report.keeper, kStopGrace)) {
    log.push_back("the container's keeper ignored SIGTERM for 10 s; killed");
    kill(report.keeper, SIGKILL);
    wait_bounded(report.keeper, 5s);
  }
  if (report.save_to.empty()) return log;
  try {
    KeeperLog saved = run_keeper(keeper, kSaveAction, step.who, report.to_json(), kSaveDeadline);
    if (saved.ok) {
      log.push_back("saved the container to " + report.save_to.string());
    } else {
      log.push_back("cannot save the container to " + report.save_to.string() + ": " + saved.error);
    }
  } catch (const Error& e) {
    log.push_back("cannot save the container to " + report.save_to.string() + ": " + e.describe());
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
  } catch (const Error& e) {
    log.push_back("cannot remove the job's containers: " + e.describe());
  }
  return log;
}

}  // namespace deepops::spank
