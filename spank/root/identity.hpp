#pragma once
// Who a step's processes run as, as root learns it from Slurm.
#include <sys/types.h>

#include "keeper_protocol.hpp"

namespace deepops::spank {

// The job's user with the supplementary groups this process holds now (in
// user_init, slurmstepd has already switched to them).
UserIdentity current_identity(uid_t uid, gid_t gid);
// The job's user with the groups the group database lists (in the epilog).
UserIdentity identity_of(uid_t uid, gid_t gid);

}  // namespace deepops::spank
