#pragma once

#include <sys/types.h>

#include <filesystem>
#include <vector>

namespace deepops::spank {

// Who a step's processes run as: the job's user, with the groups Slurm gave
// the step.
struct UserIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// The job's user with the supplementary groups this process holds now (in
// user_init, slurmstepd has already switched to them).
UserIdentity current_identity(uid_t uid, gid_t gid);
// The job's user with the groups the group database lists (in the epilog).
UserIdentity identity_of(uid_t uid, gid_t gid);

// Turns a child of slurmstepd into the user for good: real, effective and
// saved ids, groups, and the dumpable flag that Slurm's id switch cleared
// (without it /proc/self/uid_map cannot be written). Throws Error.
void become_user(const UserIdentity& who);

// Makes <runtime_path>/<uid>, owned by the user, mode 0700, while this child
// still can (runtime_path is the admin's, from plugstack.conf). Empty: nothing.
void prepare_runtime_path(const std::filesystem::path& runtime_path, const UserIdentity& who);

}  // namespace deepops::spank
