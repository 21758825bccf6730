// deepops-step-state [--uid=U --gid=G --groups=G1,G2...] JOB_ID STEP_ID:
// whether slurmctld still runs a step.
// Exit 0: it runs (or is suspended); 3: it ended, was cancelled, or its job is
// gone, completing or requeued; 1: slurmctld could not be asked; 2: usage.
//
// The plugin runs this while its user_init waits for an import or a start,
// because it cannot ask slurmctld itself: from Slurm 23.11 on, slurmstepd
// holds libslurm's authentication lock (auth_setuid_lock) for as long as it
// has dropped privileges, user_init included, and any RPC from that process
// then dies in auth_g_create ("Resource deadlock avoided", a fatal error of
// the step). A fresh program has a libslurm of its own. Started by root
// (slurmstepd), it first becomes the job's user (--uid, --gid, --groups), who
// may always see their own job; SLURM_CONF comes from slurmstepd.
#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "slurm_compat.hpp"

namespace {
using namespace deepops::spank;

constexpr int kRunning = 0, kEnded = 3, kUnknown = 1, kUsage = 2;

// The job's state: kEnded when it is not running (or suspended), is
// completing, or slurmctld no longer knows it.
int job_state(uint32_t job_id) {
  job_info_msg_t* jobs = nullptr;
  if (slurm_compat::load_job(&jobs, job_id) != SLURM_SUCCESS) {
    return slurm_compat::last_error() == ESLURM_INVALID_JOB_ID ? kEnded : kUnknown;
  }
  int state = kEnded;
  for (uint32_t i = 0; i < jobs->record_count; ++i) {
    const slurm_job_info_t& j = jobs->job_array[i];
    if (j.job_id != job_id) continue;
    const uint32_t base = j.job_state & JOB_STATE_BASE;  // pending again: requeued
    const bool ended =
        base == JOB_PENDING || base > JOB_SUSPENDED || (j.job_state & JOB_COMPLETING);
    state = ended ? kEnded : kRunning;
  }
  slurm_free_job_info_msg(jobs);
  return state;
}

// An srun step of a running job: scancel JOB.STEP, or srun interrupted
// inside an allocation, ends the step alone.
int step_state(uint32_t job_id, uint32_t step_id) {
  job_step_info_response_msg_t* steps = nullptr;
  if (slurm_compat::load_job_step(&steps, job_id, step_id) != SLURM_SUCCESS) return kUnknown;
  int state = kEnded;
  for (uint32_t i = 0; i < steps->job_step_count; ++i) {
    const job_step_info_t& st = steps->job_steps[i];
    if (st.step_id.job_id != job_id || st.step_id.step_id != step_id) continue;
    state = (st.state & JOB_STATE_BASE) > JOB_SUSPENDED ? kEnded : kRunning;
  }
  slurm_free_job_step_info_response_msg(steps);
  return state;
}

bool parse_number(std::string_view text, unsigned long& out) {
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  out = std::strtoul(s.c_str(), &end, 10);
  return errno == 0 && end != s.c_str() && *end == '\0' && out < 0xffffffffUL;
}

// A job or step id ("batch" for the batch step), below NO_VAL.
bool parse_id(std::string_view text, uint32_t& id) {
  unsigned long v = 0;
  if (text == "batch") {
    id = SLURM_BATCH_SCRIPT;
    return true;
  }
  if (!parse_number(text, v) || v >= NO_VAL) return false;
  id = static_cast<uint32_t>(v);
  return true;
}

// --uid=U --gid=G --groups=A,B: become that user for good. Without them,
// stay who we are (a test, or a user asking about their own step).
bool become(const std::vector<std::string_view>& options) {
  unsigned long uid = 0, gid = 0, g = 0;
  bool have_uid = false, have_gid = false;
  std::vector<gid_t> groups;
  for (std::string_view o : options) {
    if (o.starts_with("--uid=")) {
      have_uid = parse_number(o.substr(6), uid);
      if (!have_uid) return false;
    } else if (o.starts_with("--gid=")) {
      have_gid = parse_number(o.substr(6), gid);
      if (!have_gid) return false;
    } else if (o.starts_with("--groups=")) {
      for (std::string_view rest = o.substr(9); !rest.empty();) {
        const size_t comma = rest.find(',');
        if (!parse_number(rest.substr(0, comma), g)) return false;
        groups.push_back(static_cast<gid_t>(g));
        rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
      }
    } else {
      return false;
    }
  }
  if (!have_uid && !have_gid) return groups.empty();
  if (!have_uid || !have_gid) return false;
  if (getuid() != 0) return getuid() == uid;  // only root may become another
  if (geteuid() != 0 && seteuid(0) != 0) return false;
  return setgroups(groups.size(), groups.data()) == 0 &&
         setresgid(static_cast<gid_t>(gid), static_cast<gid_t>(gid), static_cast<gid_t>(gid)) ==
             0 &&
         setresuid(static_cast<uid_t>(uid), static_cast<uid_t>(uid), static_cast<uid_t>(uid)) == 0;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> options, ids;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    (a.starts_with("--") ? options : ids).push_back(a);
  }
  if (!become(options)) return kUsage;
  uint32_t job_id = 0, step_id = 0;
  if (ids.size() != 2 || !parse_id(ids[0], job_id) || !parse_id(ids[1], step_id) ||
      job_id == SLURM_BATCH_SCRIPT) {
    return kUsage;
  }
  // The API's configuration and plugins (from SLURM_CONF): 26.05 crashes in
  // its first call without it; a slurm.conf it cannot read exits 1 here.
  slurm_init(nullptr);
  int state = job_state(job_id);
  if (state == kRunning && step_id != SLURM_BATCH_SCRIPT) state = step_state(job_id, step_id);
  slurm_fini();
  return state;
}
