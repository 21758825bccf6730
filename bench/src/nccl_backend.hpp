#pragma once

#include <memory>
#include <string>

#include "backend.hpp"
#include "launch.hpp"

namespace deepops::bench {

struct NcclOptions {
  int gpus_per_rank = 1;  // -g
  size_t max_bytes = 0;   // the largest message: each GPU holds two of these
  std::string library;    // libnccl.so.2 to load; empty: the loader's search path
};

// The node's side alone: driver, devices, NCCL. Throws SetupError. -np runs
// it once before forking, so that a node without a GPU says so once.
void probe_nccl(const NcclOptions& options);

// Every process of `ring` drives its GPUs through one NCCL communicator of
// ring.size() * gpus_per_rank ranks; the GPUs are chosen from `where`'s local
// rank for both binding styles (gpu_for_rank). Collective: every process
// calls it. Throws SetupError on every process when any of them cannot start
// (the ones that failed say why).
std::unique_ptr<AllReduceBackend> make_nccl_backend(Ring& ring, const LaunchInfo& where,
                                                    const NcclOptions& options);

}  // namespace deepops::bench
