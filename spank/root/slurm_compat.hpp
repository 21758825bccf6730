// Every difference between the Slurm releases the plugin supports (22.05,
// 24.11, 26.05), in one place, keyed on the headers' SLURM_VERSION_NUMBER.
// The plugin is built per release (slurmstepd refuses a plugin of another
// one), so a compile-time choice is enough. Porting to a new release starts
// here: tests/matrix/run RELEASE builds and runs the acceptance on it.
//
// What changed, and where it shows:
// - 24.11 dropped slurm_get_errno(): libslurm reports through errno, as it
//   already did under 22.05 (slurm_get_errno() returned errno), so errno is
//   read on every release.
// - 26.05 identifies a job or step by slurm_step_id_t (with a new sluid) in
//   slurm_load_job() and slurm_get_job_steps(). Its slurm.h keeps the old
//   job-id forms for C only, through _Generic macros that C++ cannot see.
//
// Only public libslurm API is used here.
#pragma once

#include <cerrno>
#include <cstdint>

extern "C" {
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
}

namespace deepops::spank::slurm_compat {

// libslurm's error code of the last failed call.
inline int last_error() { return errno; }

#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(26, 5, 0)
// The step id with every field unset, as SLURM_STEP_ID_INITIALIZER (a C
// compound literal) makes it.
inline slurm_step_id_t step_id(uint32_t job_id, uint32_t step_id = NO_VAL) {
  slurm_step_id_t id{};
  id.sluid = 0;
  id.job_id = job_id;
  id.step_het_comp = NO_VAL;
  id.step_id = step_id;
  return id;
}
#endif

// One job's record, as slurm_load_job(job_id) gives it.
inline int load_job(job_info_msg_t** jobs, uint32_t job_id) {
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(26, 5, 0)
  return slurm_load_job(jobs, step_id(job_id), SHOW_ALL);
#else
  return slurm_load_job(jobs, job_id, SHOW_ALL);
#endif
}

// One step's record, as slurm_get_job_steps(job_id, step_id) gives it.
inline int load_job_step(job_step_info_response_msg_t** steps, uint32_t job_id, uint32_t step) {
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(26, 5, 0)
  slurm_step_id_t id = step_id(job_id, step);
  return slurm_get_job_steps(&id, steps, SHOW_ALL);
#else
  return slurm_get_job_steps(0 /* update_time: any */, job_id, step, steps, SHOW_ALL);
#endif
}

}  // namespace deepops::spank::slurm_compat
