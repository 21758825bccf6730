// Slurm node lists ("gpu[001-016,020],login1") reach the plugin from
// slurmctld (SLURM_STEP_NODELIST) and deepops-bench from the environment and
// --nodes. Both expand them with libslurm's own hostlist code: the plugin
// linked (nth_host), the bench through dlopen (slurm_first_host). Neither may
// crash or hang on any text. The first byte picks which host to ask for.
//
// libslurm 22.05 leaks a few bytes on some malformed lists (in
// slurm_hostlist_create_dims, upstream): LeakSanitizer is told to ignore
// leaks allocated inside libslurm, and only those; ours are still reported.
#include <cstddef>
#include <cstdint>
#include <string>

#include "backend.hpp"
#include "rendezvous.hpp"
#include "task_env.hpp"

extern "C" const char* __lsan_default_suppressions() { return "leak:libslurm\n"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  unsigned n = data[0] % 8;
  std::string list(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string host = deepops::spank::nth_host(list, n);
  (void)deepops::spank::first_host(list);
  try {
    std::string first = deepops::bench::slurm_first_host(list);
    if (n == 0 && first != host && !host.empty()) __builtin_trap();  // one parser, one answer
  } catch (const deepops::bench::SetupError&) {
  }
  return 0;
}
