// deepops-bench reads admin-written profiles, Slurm's environment
// (SLURM_STEP_TASKS_PER_NODE), sizes from its command line, and the output of
// scontrol and srun. Each either succeeds or throws std::invalid_argument: no
// crash, no other exception, and a profile that parses gives a finite
// expectation.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "launch.hpp"
#include "profile.hpp"
#include "sizes.hpp"
#include "sweep.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  using namespace deepops::bench;
  try {
    Profile p = parse_profile(text, "fuzz");
    for (int nodes : {1, 2, 64}) {
      for (int ranks : {1, 8}) {
        Expectation e = expected_busbw(p, nodes, ranks);
        if (!std::isfinite(e.busbw) || e.minimum > e.busbw + 1e-9) std::abort();
      }
    }
  } catch (const std::invalid_argument&) {
  }
  try {
    (void)tasks_on_node(text, 3);
  } catch (const std::invalid_argument&) {
  }
  try {
    (void)parse_size(text);
  } catch (const std::invalid_argument&) {
  }
  (void)node_address(text, "n1");
  (void)rank0_json(text);
  return 0;
}
